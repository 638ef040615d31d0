/* global document, window, uPlot */
// The dashboard's only script, served as a file: the Content-Security-Policy
// allows no inline script. It refreshes the overview's numbers from the JSON
// endpoint and draws the last hour with uPlot. Values go in as text, never HTML.
'use strict'

;(function () {
  const base = document.body.dataset.base || ''
  const chartElement = document.getElementById('chart')
  if (!document.querySelector('[data-stat]')) return
  const series = [
    ['accepted', '#2b7a0b'], ['duplicate', '#7a7a7a'], ['refused', '#b3261e'],
    ['succeeded', '#1f5fbf'], ['failed', '#e07b00'], ['retried', '#8e44ad']
  ]
  let plot
  // The last hour of samples: the first answer brings them all, later ones only what is new.
  let samples = []

  function valueAt (data, path) {
    return path.split('.').reduce((value, key) => (value == null ? undefined : value[key]), data)
  }

  function chartData (samples) {
    return [samples.map((sample) => sample.t)].concat(series.map(([name]) => samples.map((sample) => sample[name])))
  }

  function draw (samples) {
    if (!chartElement || typeof uPlot !== 'function') return
    const data = chartData(samples)
    if (plot) { plot.setData(data); return }
    plot = new uPlot({
      width: Math.max(320, chartElement.clientWidth || 800),
      height: 240,
      series: [{}].concat(series.map(([label, stroke]) => ({ label, stroke, width: 2 }))),
      axes: [{}, { label: 'per interval' }]
    }, data, chartElement)
  }

  function render (data) {
    for (const element of document.querySelectorAll('[data-stat]')) {
      const path = element.dataset.stat
      if (path === 'updated') { element.textContent = 'Updated ' + new Date().toLocaleTimeString() + '.'; continue }
      const value = valueAt(data, path)
      if (value !== undefined) element.textContent = String(value)
    }
    const reasons = document.querySelector('[data-list="health.reasons"]')
    if (reasons && data.health) {
      reasons.replaceChildren(...data.health.reasons.map((reason) => {
        const item = document.createElement('li')
        item.textContent = reason
        return item
      }))
    }
    const section = document.querySelector('[data-health]')
    if (section && data.health) section.dataset.health = data.health.status
    samples = samples.concat(data.samples)
    const last = samples[samples.length - 1]
    if (last) samples = samples.filter((sample) => sample.t > last.t - 3600)
    draw(samples)
  }

  async function refresh () {
    try {
      const last = samples[samples.length - 1]
      const query = last ? '?since=' + encodeURIComponent(String(last.t)) : ''
      const response = await fetch(base + '/api/overview' + query, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      if (response.ok) render(await response.json())
    } catch {
      // A missed refresh is retried at the next tick; the page keeps its last numbers.
    }
  }

  // As often as samples are taken, but not more than once a second nor less than every five.
  const every = Math.max(1000, Math.min(5000, Number(chartElement && chartElement.dataset.interval) || 5000))
  refresh()
  window.setInterval(refresh, every)
})()
