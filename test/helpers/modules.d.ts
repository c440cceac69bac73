// Older majors installed side by side under aliases, so the adapters are tested on both.
declare module 'express4' {
  import express from 'express'
  export default express
}
declare module 'koa2' {
  import Koa from 'koa'
  export default Koa
}
