// Loopback-only preload for test peers: `node --require tests/peers/loopback.cjs <script>`.
//
// Switchboard's tests must bind and talk on loopback only. Some reference peers
// (e.g. server-everything's `app.listen(PORT)`) listen on all interfaces; this
// preload patches net.Server.prototype.listen so that a port-only or host-less
// call binds 127.0.0.1 instead. Explicit hosts, paths (unix sockets) and handles
// are left untouched.
'use strict';
const net = require('node:net');

const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb]): insert the host when it is missing.
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  } else if (first === undefined || typeof first === 'function') {
    // listen([cb]): random port, all interfaces by default.
    args.unshift(0, '127.0.0.1');
  } else if (first !== null && typeof first === 'object' && first.path === undefined &&
             first.fd === undefined && first.handle === undefined && !(first instanceof net.Server) &&
             first._handle === undefined && first.host === undefined) {
    // listen({ port }): options object without a host.
    args[0] = { ...first, host: '127.0.0.1' };
  }
  return originalListen.apply(this, args);
};
