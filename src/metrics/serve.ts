import type { IncomingMessage, ServerResponse } from 'node:http'
import type { GatewayMetrics } from './index.js'

/**
 * A Node request listener that answers with the gateway's metrics, for a metrics port of its own (so the
 * scrape never shares a port with the public API) or a route of any framework that takes Node's
 * `(req, res)`. GET and HEAD only; a failure to collect answers 500 without the details.
 *
 * @example
 * http.createServer(serveMetrics(gateway.metrics!)).listen(9464)
 * app.get('/metrics', serveMetrics(gateway.metrics!)) // Express
 */
export function serveMetrics(metrics: GatewayMetrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
      res.end('method not allowed\n')
      return
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, {
          'content-type': metrics.contentType,
          'content-length': Buffer.byteLength(text),
          'cache-control': 'no-store',
        })
        res.end(req.method === 'HEAD' ? undefined : text)
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        res.end('metrics could not be collected\n')
      },
    )
  }
}
