import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/**
 * Wraps a client request body for one upstream attempt. undici destroys the body it was given
 * when the attempt fails; handing it this wrapper instead keeps the client request intact, and
 * because the wrapper only starts reading the client on undici's first read (after the upstream
 * connection exists), a connect failure leaves the body unread and the request can go elsewhere.
 * Backpressure: the client is paused whenever undici's buffer is full.
 */
export function lazyBody(req: IncomingMessage): Readable {
  let attached = false;
  const onData = (chunk: Buffer): void => {
    if (!body.push(chunk)) req.pause();
  };
  const onEnd = (): void => {
    body.push(null);
  };
  const onError = (err: Error): void => {
    body.destroy(err);
  };
  const detach = (): void => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
  };
  const body: Readable = new Readable({
    read() {
      if (!attached) {
        attached = true;
        req.on('data', onData);
        req.on('end', onEnd);
        req.on('error', onError);
      }
      req.resume();
    },
    destroy(err, callback) {
      detach();
      callback(err);
    },
  });
  return body;
}
