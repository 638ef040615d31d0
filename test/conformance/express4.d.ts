// express4 is Express 4 under an alias (npm:express@4) with no types of its own;
// its API, as the tests use it, is the one @types/express describes.
declare module 'express4' {
  import express from 'express'
  export default express
}
