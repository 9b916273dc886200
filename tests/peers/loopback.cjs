// Preload (`node --require ./loopback.cjs ...`) that makes every TCP listener bind 127.0.0.1.
// Test peers such as server-everything listen on all interfaces; our rule is loopback-only.
// Handles listen(port[, host][, backlog][, cb]) and listen({ port, host, ... }); unix-socket
// paths and handles pass through untouched.
'use strict';
const net = require('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first) && first.path === undefined && first.fd === undefined && first.handle === undefined && !first._handle) {
    args[0] = { ...first, host: '127.0.0.1' };
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    args = cb ? [Number(first), '127.0.0.1', cb] : [Number(first), '127.0.0.1'];
  }
  return listen.apply(this, args);
};
