/* global document, window, uPlot */
// The dashboard's only script, served as a file: the Content-Security-Policy
// allows no inline script. It refreshes the overview's numbers from the JSON
// endpoint and draws the last hour with uPlot. Values go in as text, never HTML.
'use strict'

;(function () {
  const base = document.body.dataset.base || ''
  const chartElement = document.getElementById('chart')
  const historyElement = document.getElementById('chart-history')
  if (!document.querySelector('[data-stat]')) return
  const series = [
    ['accepted', '#2b7a0b'], ['duplicate', '#7a7a7a'], ['refused', '#b3261e'],
    ['succeeded', '#1f5fbf'], ['failed', '#e07b00'], ['retried', '#8e44ad']
  ]
  let plot
  let historyPlot
  let refreshes = 0
  // The last hour of samples: the first answer brings them all, later ones only what is new.
  let samples = []

  function valueAt (data, path) {
    return path.split('.').reduce((value, key) => (value == null ? undefined : value[key]), data)
  }

  function chartData (samples) {
    return [samples.map((sample) => sample.t)].concat(series.map(([name]) => samples.map((sample) => sample[name])))
  }

  function makePlot (element, data, label) {
    return new uPlot({
      width: Math.max(320, element.clientWidth || 800),
      height: 240,
      series: [{}].concat(series.map(([name, stroke]) => ({ label: name, stroke, width: 2 }))),
      axes: [{}, { label }]
    }, data, element)
  }

  function draw (samples) {
    if (!chartElement || typeof uPlot !== 'function') return
    const data = chartData(samples)
    if (plot) { plot.setData(data); return }
    plot = makePlot(chartElement, data, 'per interval')
  }

  function duration (seconds) {
    if (seconds < 10) return Number(seconds.toFixed(2)) + ' s'
    if (seconds < 120) return Math.round(seconds) + ' s'
    if (seconds < 7200) return Math.round(seconds / 60) + ' min'
    return (seconds / 3600).toFixed(1) + ' h'
  }

  // Since start: buckets that widen as time goes on; the whole series comes each time.
  function drawHistory (history) {
    if (!historyElement || !history || typeof uPlot !== 'function') return
    const bucket = document.querySelector('[data-stat="historyBucket"]')
    if (bucket) bucket.textContent = duration(history.bucketSeconds)
    const data = chartData(history.points)
    if (historyPlot) { historyPlot.setData(data); return }
    historyPlot = makePlot(historyElement, data, 'per bucket')
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
    drawHistory(data.history)
  }

  async function refresh () {
    try {
      const last = samples[samples.length - 1]
      // The since-start series on the first refresh and about every 30 s after.
      const history = refreshes++ % Math.max(1, Math.round(30000 / every)) === 0
      const query = '?' + (last ? 'since=' + encodeURIComponent(String(last.t)) + '&' : '') + (history ? 'history=1' : '')
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
