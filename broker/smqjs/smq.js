/*
 * smq.js: Tarpon's browser client for SMQ (Simple Message Queues).
 *
 * Written from the project's SMQ specification (docs/smq-protocol.md, §1 wire
 * format, §3.1 client API). It defines the global `SMQ` with the SMQ.Client
 * API known from Barracuda App Server / Mako, so pages written for /rtl/smq.js
 * work unchanged. It also runs in Node: when `module` exists it is exported as
 * module.exports, and the WebSocket constructor is taken from opt.WebSocket,
 * SMQ.WebSocket, the global WebSocket, or require("ws"), in that order.
 *
 * Transport: one SMQ message per binary WebSocket message (no length prefix).
 * All integers are unsigned big-endian.
 */
(function (global) {
  "use strict";

  // Message types (spec §1.4).
  var MSG_INIT = 1, MSG_CONNECT = 2, MSG_CONNACK = 3, MSG_SUBSCRIBE = 4,
    MSG_SUBACK = 5, MSG_CREATE = 6, MSG_CREATEACK = 7, MSG_PUBLISH = 8,
    MSG_UNSUBSCRIBE = 9, MSG_DISCONNECT = 11, MSG_PING = 12, MSG_PONG = 13,
    MSG_OBSERVE = 14, MSG_UNOBSERVE = 15, MSG_CHANGE = 16, MSG_CREATESUB = 17,
    MSG_CREATESUBACK = 18;

  var MAX_PAYLOAD = 0xFFF0;

  // ---------------------------------------------------------------- UTF-8

  // utf8Length returns the number of bytes str takes in UTF-8. Lone
  // surrogates count as U+FFFD (3 bytes), matching encode.
  function utf8Length(str) {
    str = String(str);
    var n = 0;
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xD800 && c <= 0xDBFF && i + 1 < str.length &&
        (str.charCodeAt(i + 1) & 0xFC00) === 0xDC00) { n += 4; i++; }
      else n += 3;
    }
    return n;
  }

  // utf8Encode encodes str. Without dst it returns a new Uint8Array; with
  // dst (a Uint8Array) it writes at offset off and returns the new offset.
  function utf8Encode(str, dst, off) {
    str = String(str);
    var ret = !dst;
    if (ret) { dst = new Uint8Array(utf8Length(str)); off = 0; }
    off = off || 0;
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      if (c < 0x80) { dst[off++] = c; continue; }
      if (c < 0x800) {
        dst[off++] = 0xC0 | (c >> 6);
        dst[off++] = 0x80 | (c & 0x3F);
        continue;
      }
      if (c >= 0xD800 && c <= 0xDFFF) {
        var d = i + 1 < str.length ? str.charCodeAt(i + 1) : 0;
        if (c <= 0xDBFF && (d & 0xFC00) === 0xDC00) {
          var cp = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00);
          i++;
          dst[off++] = 0xF0 | (cp >> 18);
          dst[off++] = 0x80 | ((cp >> 12) & 0x3F);
          dst[off++] = 0x80 | ((cp >> 6) & 0x3F);
          dst[off++] = 0x80 | (cp & 0x3F);
          continue;
        }
        c = 0xFFFD; // lone surrogate
      }
      dst[off++] = 0xE0 | (c >> 12);
      dst[off++] = 0x80 | ((c >> 6) & 0x3F);
      dst[off++] = 0x80 | (c & 0x3F);
    }
    return ret ? dst : off;
  }

  // utf8Decode decodes bytes[start:end] (a Uint8Array or array of numbers).
  // Malformed sequences become U+FFFD; it never throws.
  function utf8Decode(bytes, start, end) {
    start = start || 0;
    end = end === undefined ? bytes.length : end;
    var out = [], parts = [];
    var i = start;
    while (i < end) {
      var b = bytes[i], cp = 0xFFFD, need = 0, min = 0;
      if (b < 0x80) { cp = b; i++; }
      else {
        if ((b & 0xE0) === 0xC0) { need = 1; cp = b & 0x1F; min = 0x80; }
        else if ((b & 0xF0) === 0xE0) { need = 2; cp = b & 0x0F; min = 0x800; }
        else if ((b & 0xF8) === 0xF0) { need = 3; cp = b & 0x07; min = 0x10000; }
        else { need = -1; }
        if (need < 0) { cp = 0xFFFD; i++; }
        else {
          var j = 1;
          for (; j <= need; j++) {
            var cc = i + j < end ? bytes[i + j] : -1;
            if ((cc & 0xC0) !== 0x80 || cc < 0) break;
            cp = (cp << 6) | (cc & 0x3F);
          }
          if (j <= need) { cp = 0xFFFD; i += j; }
          else {
            i += need + 1;
            if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
          }
        }
      }
      if (cp >= 0x10000) {
        cp -= 0x10000;
        out.push(0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
      } else out.push(cp);
      if (out.length >= 8192) { parts.push(String.fromCharCode.apply(null, out)); out = []; }
    }
    parts.push(String.fromCharCode.apply(null, out));
    return parts.join("");
  }

  // ------------------------------------------------------------- helpers

  function putU32(a, off, v) {
    a[off] = (v >>> 24) & 0xFF; a[off + 1] = (v >>> 16) & 0xFF;
    a[off + 2] = (v >>> 8) & 0xFF; a[off + 3] = v & 0xFF;
  }
  function getU32(a, off) {
    return ((a[off] << 24) >>> 0) + (a[off + 1] << 16) + (a[off + 2] << 8) + a[off + 3];
  }
  function isNum(x) { return typeof x === "number"; }
  function isStr(x) { return typeof x === "string"; }
  function isFunc(x) { return typeof x === "function"; }
  function log(msg) { if (global.console && global.console.log) global.console.log("SMQ: " + msg); }

  // toBytes converts publish data: string → UTF-8, Uint8Array as is,
  // array of numbers / ArrayBuffer / other typed arrays → Uint8Array.
  function toBytes(data) {
    if (isStr(data)) return utf8Encode(data);
    if (data instanceof Uint8Array) return data;
    if (typeof ArrayBuffer !== "undefined") {
      if (data instanceof ArrayBuffer) return new Uint8Array(data);
      if (ArrayBuffer.isView && ArrayBuffer.isView(data))
        return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    if (Array.isArray(data)) return new Uint8Array(data);
    throw new TypeError("SMQ: publish data must be a string, Uint8Array or array of bytes");
  }

  // nameMsg builds [type][name...].
  function nameMsg(type, name) {
    var n = utf8Length(name), m = new Uint8Array(1 + n);
    m[0] = type; utf8Encode(name, m, 1);
    return m;
  }
  function idMsg(type, id) {
    var m = new Uint8Array(5);
    m[0] = type; putU32(m, 1, id);
    return m;
  }

  // ------------------------------------------------------- SMQ.wsURL etc.

  function pageLocation() {
    return typeof global.location === "object" && global.location ? global.location : null;
  }

  // wsURL builds ws:// or wss:// for the page's origin plus path. Without a
  // path it uses the page's own path; a relative path is resolved against
  // the page's directory; an absolute ws(s):// URL is returned as is.
  function wsURL(path) {
    if (isStr(path) && /^wss?:\/\//i.test(path)) return path;
    var loc = pageLocation();
    if (!loc) throw new Error("SMQ.wsURL: no page location (pass a full ws:// URL)");
    var proto = loc.protocol === "https:" ? "wss:" : "ws:";
    var pathname;
    if (path === undefined || path === null || path === "") {
      pathname = loc.pathname + (loc.search || "");
    } else if (typeof URL === "function") {
      var u = new URL(String(path), loc.href);
      pathname = u.pathname + u.search;
    } else if (String(path).charAt(0) === "/") {
      pathname = String(path);
    } else {
      var dir = loc.pathname.substring(0, loc.pathname.lastIndexOf("/") + 1);
      pathname = dir + path;
    }
    // loc.host already omits the default port (80/443).
    return proto + "//" + loc.host + pathname;
  }

  function findWebSocket(opt) {
    if (opt && opt.WebSocket) return opt.WebSocket;
    if (SMQ.WebSocket) return SMQ.WebSocket;
    if (typeof global.WebSocket === "function") return global.WebSocket;
    if (typeof require === "function") {
      try { return require("ws"); } catch (e) { /* not in Node, or ws missing */ }
    }
    return null;
  }

  function websocket() { return !!findWebSocket(); }

  // ---------------------------------------------------------- SMQ.Client

  // Client connects at once. Usable with or without `new`.
  function Client(url, opt) {
    if (!(this instanceof Client)) return new Client(url, opt);
    if (url !== undefined && url !== null && !isStr(url)) { opt = url; url = undefined; }
    this._url = url || wsURL();
    this._opt = opt || {};
    this._WS = findWebSocket(this._opt);
    if (!this._WS) throw new Error("SMQ: no WebSocket implementation");
    this._everConnected = false;
    this._resetState();
    this._queue = []; // calls made while not connected
    this._connect();
  }

  var proto = Client.prototype;

  // Default global message handler.
  proto.onmsg = function (data, ptid, tid, subtid) {
    log("dropping message: tid=" + tid + " ptid=" + ptid + " subtid=" + subtid);
  };

  // _resetState forgets every broker-assigned ID and callback.
  proto._resetState = function () {
    this._etid = 0;
    this._connected = false;
    this._topic2tid = {}; this._tid2topic = {};
    this._sub2tid = {}; this._tid2sub = {};
    // tid → {onmsg: fn|null, sub: {subtid: fn}}
    this._cbs = {};
    // observers: tid → {fn, topic (name or number)}
    this._obs = {};
    // pending acks by name: {name: [fn(accepted, id)]}
    this._pend = {}; this._pend[MSG_SUBACK] = {}; this._pend[MSG_CREATEACK] = {};
    this._pend[MSG_CREATESUBACK] = {};
    // subscription records, the source of truth for a reconnect.
    this._subs = [];
  };

  proto._connect = function () {
    var self = this, ws;
    this._initDone = false;
    try {
      ws = new this._WS(this._url);
    } catch (e) {
      this._ws = null;
      var t = global.setTimeout(function () { self._closed("Cannot create WebSocket: " + e.message, true); }, 0);
      return t;
    }
    this._ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onmessage = function (ev) { if (self._ws === ws) self._onmessage(ev.data); };
    ws.onclose = function (ev) {
      if (self._ws !== ws) return;
      var why = "Unexpected socket close";
      if (ev && ev.reason) why += ": " + ev.reason;
      self._closed(why, true);
    };
    ws.onerror = function () { /* onclose follows */ };
  };

  // _closed tears the socket down once and asks onclose whether to
  // reconnect. Later events from the old socket are ignored.
  proto._closed = function (msg, canreconnect) {
    var ws = this._ws, self = this;
    this._ws = null;
    this._connected = false;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      ws.onerror = function () { };
      try { ws.close(); } catch (e) { /* already closed */ }
    }
    // Pending acks die with the connection; subscription records stay.
    this._pend[MSG_SUBACK] = {}; this._pend[MSG_CREATEACK] = {}; this._pend[MSG_CREATESUBACK] = {};
    var ms;
    if (isFunc(this.onclose)) {
      try { ms = this.onclose(msg, canreconnect); } catch (e) { log("onclose: " + e); }
    }
    if (canreconnect && isNum(ms) && ms > 0 && !this._stopped) {
      if (ms < 1000) ms = 1000;
      this._timer = global.setTimeout(function () { self._timer = null; self._connect(); }, ms);
    }
  };

  // _send writes one SMQ message as one binary WebSocket message. Nothing
  // is sent on a socket that is not open (the caller queues while offline).
  proto._send = function (m) {
    var ws = this._ws;
    if (ws && ws.readyState === 1) ws.send(m);
  };

  proto._protocolError = function () {
    this._closed("protocol error", true);
  };

  proto._onmessage = function (data) {
    var m;
    if (isStr(data)) m = utf8Encode(data); // a broker should never send text frames
    else if (data instanceof Uint8Array) m = data;
    else if (data && data.byteLength !== undefined && !ArrayBuffer.isView(data)) m = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) m = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else return this._protocolError();
    if (m.length < 1) return this._protocolError();
    if (!this._initDone) return this._onInit(m);
    if (!this._connected) return this._onConnack(m);
    switch (m[0]) {
      case MSG_PUBLISH: return this._onPublish(m);
      case MSG_SUBACK: case MSG_CREATEACK: case MSG_CREATESUBACK: return this._onAck(m);
      case MSG_CHANGE: return this._onChange(m);
      case MSG_PING: if (m.length === 1) { this._send(new Uint8Array([MSG_PONG])); return; } break;
      case MSG_PONG: return;
      case MSG_DISCONNECT:
        return this._closed(m.length > 1 ? utf8Decode(m, 1) : "Disconnect", false);
    }
    this._protocolError();
  };

  // _onInit handles Init (spec §1.5) and answers with Connect v1.
  proto._onInit = function (m) {
    if (m[0] !== MSG_INIT || m.length < 6 || m[1] !== 1) return this._protocolError();
    this._initDone = true;
    this._seed = getU32(m, 2);
    this._ipaddr = utf8Decode(m, 6);
    var cred = null;
    if (isFunc(this.onauth)) {
      cred = this.onauth(this._seed, this._ipaddr);
      if (cred !== undefined && cred !== null) cred = toBytes(cred);
    }
    var uid = this._opt.uid !== undefined && this._opt.uid !== null ?
      toBytes(this._opt.uid) : utf8Encode(this._ipaddr + this._seed);
    var info = this._opt.info !== undefined && this._opt.info !== null ?
      toBytes(this._opt.info) : new Uint8Array(0);
    var clen = cred ? cred.length : 0;
    if (uid.length > 255 || clen > 255) {
      this._stopped = true;
      return this._closed("uid or credentials longer than 255 bytes", false);
    }
    var c = new Uint8Array(4 + uid.length + clen + info.length), o = 0;
    c[o++] = MSG_CONNECT; c[o++] = 1; c[o++] = uid.length;
    c.set(uid, o); o += uid.length;
    c[o++] = clen;
    if (cred) { c.set(cred, o); o += clen; }
    c.set(info, o);
    this._send(c);
  };

  proto._onConnack = function (m) {
    if (m[0] !== MSG_CONNACK || m.length < 6) return this._protocolError();
    if (m[1] !== 0) {
      var reason = m.length > 6 ? utf8Decode(m, 6) : "Connection refused, code " + m[1];
      return this._closed(reason, false);
    }
    var reconnect = this._everConnected;
    this._etid = getU32(m, 2);
    this._connected = true;
    this._everConnected = true;
    if (!reconnect) {
      this._runQueue();
      if (isFunc(this.onconnect)) this.onconnect(this._etid, this._seed, this._ipaddr);
      return;
    }
    if (this._opt.cleanstart) {
      // A clean start forgets everything, including calls queued offline.
      this._resetState();
      this._etid = getU32(m, 2);
      this._connected = true;
      this._queue = [];
      if (isFunc(this.onreconnect)) this.onreconnect(this._etid, this._seed, this._ipaddr);
      return;
    }
    this._restore();
  };

  // _restore re-creates topics and sub-topics, re-subscribes, re-observes
  // named topics, runs queued calls, and calls onreconnect once every
  // restore request has been acknowledged (so the app may rely on its
  // subscriptions being active again).
  proto._restore = function () {
    var self = this;
    var topics = Object.keys(this._topic2tid), subtopics = Object.keys(this._sub2tid);
    var subs = this._subs, obs = this._obs;
    this._topic2tid = {}; this._tid2topic = {}; this._sub2tid = {}; this._tid2sub = {};
    this._cbs = {}; this._obs = {}; this._subs = [];
    var left = 1;
    function done() {
      if (--left === 0 && isFunc(self.onreconnect)) self.onreconnect(self._etid, self._seed, self._ipaddr);
    }
    topics.forEach(function (t) { left++; self._resolveTopic(t, done); });
    subtopics.forEach(function (s) { left++; self._resolveSub(s, done); });
    subs.forEach(function (r) {
      left++;
      self._subscribe(r.topic, r.subtopic, r.settings, r.onmsg, done);
    });
    Object.keys(obs).forEach(function (k) {
      var o = obs[k];
      if (!isStr(o.topic)) return; // ETID observers do not survive a reconnect
      left++;
      self._resolveTopic(o.topic, function (ok, tid) {
        if (ok) { self._obs[tid] = o; self._send(idMsg(MSG_OBSERVE, tid)); }
        done();
      });
    });
    this._runQueue();
    done();
  };

  proto._runQueue = function () {
    var q = this._queue;
    this._queue = [];
    for (var i = 0; i < q.length; i++) {
      try { q[i](); } catch (e) { log("queued call failed: " + e); }
    }
  };

  // _deferred queues fn while offline and reports whether it did.
  proto._deferred = function (fn) {
    if (this._connected) return false;
    this._queue.push(fn);
    return true;
  };

  proto._onAck = function (m) {
    if (m.length < 6) return this._protocolError();
    var accepted = m[1] === 0, id = getU32(m, 2), name = utf8Decode(m, 6);
    if (accepted) {
      if (m[0] === MSG_CREATESUBACK) { this._sub2tid[name] = id; this._tid2sub[id] = name; }
      else { this._topic2tid[name] = id; this._tid2topic[id] = name; }
    }
    var pend = this._pend[m[0]], list = pend[name];
    if (!list) return;
    delete pend[name];
    for (var i = 0; i < list.length; i++) {
      try { list[i](accepted, accepted ? id : 0); } catch (e) { log("ack callback: " + e); }
    }
  };

  // _request sends [type][name] unless the same request is already in
  // flight, and queues cb(accepted, id) for its ack (acks echo the name).
  proto._request = function (type, ackType, name, cb) {
    var pend = this._pend[ackType];
    if (pend[name]) { pend[name].push(cb); return; }
    pend[name] = [cb];
    this._send(nameMsg(type, name));
  };

  proto._resolveTopic = function (name, cb) {
    if (isNum(name)) return cb(true, name);
    var tid = this._topic2tid[name];
    if (tid !== undefined) return cb(true, tid);
    this._request(MSG_CREATE, MSG_CREATEACK, name, cb);
  };

  proto._resolveSub = function (name, cb) {
    if (name === undefined || name === null) return cb(true, 0);
    if (isNum(name)) return cb(true, name);
    var id = this._sub2tid[name];
    if (id !== undefined) return cb(true, id);
    this._request(MSG_CREATESUB, MSG_CREATESUBACK, name, cb);
  };

  // _wrap adapts a user onmsg to the subscription's datatype.
  proto._wrap = function (fn, datatype) {
    var self = this;
    if (datatype === "json") {
      return function (data, ptid, tid, subtid) {
        var v;
        try { v = JSON.parse(utf8Decode(data)); } catch (e) {
          return self.onmsg(data, ptid, tid, subtid);
        }
        fn(v, ptid, tid, subtid);
      };
    }
    if (datatype === "text") {
      return function (data, ptid, tid, subtid) { fn(utf8Decode(data), ptid, tid, subtid); };
    }
    return fn;
  };

  proto._register = function (tid, subtid, fn) {
    var c = this._cbs[tid];
    if (!c) c = this._cbs[tid] = { onmsg: null, sub: {} };
    if (subtid) c.sub[subtid] = fn; else c.onmsg = fn;
  };

  // subscribe(topic [, subtopic] [, settings]).
  proto.subscribe = function (topic, subtopic, settings) {
    if (subtopic !== undefined && subtopic !== null && !isStr(subtopic) && !isNum(subtopic)) {
      settings = subtopic; subtopic = undefined;
    }
    settings = settings || {};
    if (isStr(topic) && topic.length === 0) throw new Error("SMQ: empty topic name");
    if (isStr(subtopic) && subtopic.length === 0) throw new Error("SMQ: empty sub-topic name");
    var self = this;
    if (this._deferred(function () { self.subscribe(topic, subtopic, settings); })) return;
    var onmsg = isFunc(settings.onmsg) ? this._wrap(settings.onmsg, settings.datatype) : null;
    this._subscribe(topic, subtopic, settings, onmsg, null);
  };

  // _subscribe does the work of subscribe; done (restore only) replaces onack.
  proto._subscribe = function (topic, subtopic, settings, onmsg, done) {
    var self = this;
    if (isNum(topic) && this._tid2topic[topic] !== undefined) topic = this._tid2topic[topic];
    var rec = { topic: topic, subtopic: subtopic, settings: settings, onmsg: onmsg };
    function finish(accepted, tid, subtid) {
      if (accepted) {
        if (onmsg) self._register(tid, subtid, onmsg);
        self._subs.push(rec);
      }
      if (done) return done();
      if (isFunc(settings.onack)) settings.onack(accepted, topic, tid, subtopic, subtid);
    }
    function withTid(accepted, tid) {
      if (!accepted) return finish(false, 0, 0);
      if (subtopic === undefined || subtopic === null) return finish(true, tid, 0);
      self._resolveSub(subtopic, function (ok, subtid) { finish(ok, tid, ok ? subtid : 0); });
    }
    if (topic === "self") return withTid(true, this._etid);
    if (isNum(topic)) return withTid(true, topic); // e.g. an ETID: local callbacks only
    this._request(MSG_SUBSCRIBE, MSG_SUBACK, topic, withTid);
  };

  // create(topic [, subtopic], onack): onack(accepted, topic, tid, subtopic, subtid).
  proto.create = function (topic, subtopic, onack) {
    if (isFunc(subtopic)) { onack = subtopic; subtopic = undefined; }
    var self = this;
    if (this._deferred(function () { self.create(topic, subtopic, onack); })) return;
    this._resolveTopic(topic, function (ok, tid) {
      if (!ok || subtopic === undefined || subtopic === null) {
        if (isFunc(onack)) onack(ok, topic, tid, subtopic, 0);
        return;
      }
      self._resolveSub(subtopic, function (ok2, subtid) {
        if (isFunc(onack)) onack(ok2, topic, tid, subtopic, subtid);
      });
    });
  };

  // createsub(subtopic, onack): onack(accepted, subtopic, subtid).
  proto.createsub = function (subtopic, onack) {
    var self = this;
    if (this._deferred(function () { self.createsub(subtopic, onack); })) return;
    this._resolveSub(subtopic, function (ok, id) { if (isFunc(onack)) onack(ok, subtopic, id); });
  };

  // publish(data, topic [, subtopic]).
  proto.publish = function (data, topic, subtopic) {
    var payload = toBytes(data);
    if (payload.length > MAX_PAYLOAD) throw new RangeError("SMQ: payload larger than " + MAX_PAYLOAD + " bytes");
    if (isStr(topic) && topic.length === 0) throw new Error("SMQ: empty topic name");
    var self = this;
    if (payload === data) payload = new Uint8Array(payload); // the caller may reuse its buffer
    if (this._deferred(function () { self.publish(payload, topic, subtopic); })) return;
    this._resolveTopic(topic, function (ok, tid) {
      if (!ok) return log("publish: topic denied: " + topic);
      self._resolveSub(subtopic, function (ok2, subtid) {
        if (!ok2) return log("publish: sub-topic denied: " + subtopic);
        self._publish(payload, tid, subtid);
      });
    });
  };

  proto._publish = function (payload, tid, subtid) {
    var m = new Uint8Array(13 + payload.length);
    m[0] = MSG_PUBLISH;
    putU32(m, 1, tid); putU32(m, 5, this._etid); putU32(m, 9, subtid);
    m.set(payload, 13);
    this._send(m);
  };

  proto.pubjson = function (value, topic, subtopic) {
    this.publish(JSON.stringify(value), topic, subtopic);
  };

  // _tidOf resolves a topic argument that must already be known locally.
  proto._tidOf = function (topic, what) {
    if (isNum(topic)) return topic;
    if (topic === "self") return this._etid;
    var tid = this._topic2tid[topic];
    if (tid === undefined) throw new Error("SMQ." + what + ": unknown topic " + topic);
    return tid;
  };

  proto.unsubscribe = function (topic) {
    var self = this;
    if (this._deferred(function () { self.unsubscribe(topic); })) return;
    var tid = this._tidOf(topic, "unsubscribe");
    delete this._cbs[tid];
    this._subs = this._subs.filter(function (r) { return self._recTid(r) !== tid; });
    if (topic !== "self" && tid !== this._etid && this._tid2topic[tid] !== undefined) {
      this._send(idMsg(MSG_UNSUBSCRIBE, tid));
    }
  };

  // _recTid is the TID a subscription record currently stands for.
  proto._recTid = function (r) {
    if (r.topic === "self") return this._etid;
    if (isNum(r.topic)) return r.topic;
    return this._topic2tid[r.topic];
  };

  // observe(topic, onchange(count, topicNameOrTid)).
  proto.observe = function (topic, onchange) {
    var self = this;
    if (isNum(topic) && this._deferred(function () { self.observe(topic, onchange); })) return;
    var tid = this._tidOf(topic, "observe");
    if (tid === this._etid) throw new Error("SMQ.observe: cannot observe yourself");
    this._obs[tid] = { fn: onchange, topic: topic };
    this._send(idMsg(MSG_OBSERVE, tid));
  };

  proto.unobserve = function (topic) {
    var self = this;
    if (isNum(topic) && this._deferred(function () { self.unobserve(topic); })) return;
    var tid = this._tidOf(topic, "unobserve");
    if (this._obs[tid]) {
      delete this._obs[tid];
      this._send(idMsg(MSG_UNOBSERVE, tid));
    }
  };

  proto._onChange = function (m) {
    if (m.length !== 9) return this._protocolError();
    var tid = getU32(m, 1), count = getU32(m, 5), o = this._obs[tid];
    if (!o) return;
    var isTopic = this._tid2topic[tid] !== undefined;
    if (count === 0 && !isTopic) delete this._obs[tid]; // the observed client is gone
    if (isFunc(o.fn)) o.fn(count, isTopic ? this._tid2topic[tid] : tid);
  };

  proto._onPublish = function (m) {
    if (m.length < 13) return this._protocolError();
    var tid = getU32(m, 1), ptid = getU32(m, 5), subtid = getU32(m, 9);
    var data = m.subarray(13);
    var c = this._cbs[tid], fn = null;
    if (c) fn = (subtid && c.sub[subtid]) || c.onmsg;
    try {
      if (fn) fn(data, ptid, tid, subtid);
      else this.onmsg(data, ptid, tid, subtid);
    } catch (e) {
      log("onmsg threw: " + (e && e.stack ? e.stack : e));
    }
  };

  proto.gettid = function () { return this._etid; };
  proto.getsock = function () { return this._ws; };
  proto.topic2tid = function (name) { return this._topic2tid[name]; };
  proto.tid2topic = function (tid) { return this._tid2topic[tid]; };
  proto.subtopic2tid = function (name) { return this._sub2tid[name]; };
  proto.tid2subtopic = function (id) { return this._tid2sub[id]; };

  // disconnect sends a bare Disconnect; the broker closes the socket and
  // onclose reports it (reconnect allowed, as with BAS's client).
  proto.disconnect = function () {
    if (this._timer) { global.clearTimeout(this._timer); this._timer = null; }
    var ws = this._ws;
    if (!ws) return;
    if (this._connected) {
      this._send(new Uint8Array([MSG_DISCONNECT]));
    } else {
      try { ws.close(); } catch (e) { /* ignore */ }
    }
  };

  // close stops the client for good: no onclose call, no reconnect.
  // (Not part of BAS's API; useful for scripts that must exit.)
  proto.close = function () {
    this._stopped = true;
    if (this._timer) { global.clearTimeout(this._timer); this._timer = null; }
    var ws = this._ws;
    this._ws = null;
    this._connected = false;
    if (ws) {
      ws.onmessage = ws.onclose = null;
      ws.onerror = function () { };
      try { ws.close(); } catch (e) { /* ignore */ }
    }
  };

  var SMQ = {
    utf8: { length: utf8Length, encode: utf8Encode, decode: utf8Decode },
    wsURL: wsURL,
    websocket: websocket,
    Client: Client,
    WebSocket: null
  };

  if (typeof module === "object" && module && module.exports) module.exports = SMQ;
  global.SMQ = SMQ;
})(typeof globalThis !== "undefined" ? globalThis : typeof window !== "undefined" ? window : this);
