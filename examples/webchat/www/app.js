// The page of yandexrealtime-webchat: the microphone goes to the server over
// WebRTC, the answers come back the same way; the WebSocket carries the
// signalling and the conversation's events (see session.c for the messages).
'use strict';

const $ = (id) => document.getElementById(id);

// Everything the page knows, also for tests and the console: `webchat`.
const chat = {
  ws: null,
  pc: null,
  mic: null,
  mode: 'ptt',
  ready: false,        // the voice service's session is open
  talking: false,      // push-to-talk held
  error: '',           // the last error the server reported
  closing: '',         // why the server ended the conversation (it is stopping)
  greeted: false,      // this WebSocket got the server's hello
  pendingIce: [],
  bubbles: new Map(),  // item or response id -> element
  latencies: [],       // ms from the end of the user's speech to the answer's first sound
  micSpeaking: false,
  remoteSounding: false,
  lastDone: null,      // the last response-done event
};
window.webchat = chat;

// ---- words on the page ----

function setStatus(text, kind) {
  $('status').textContent = text;
  $('status').dataset.kind = kind;
}

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function readyStatus() {
  if (!chat.ready) return;
  setStatus(chat.mode === 'ptt'
    ? 'Connected. Hold the button (or the space bar) while you speak.'
    : 'Connected. Listening: just speak; talk over an answer to interrupt it.', 'ok');
}

function bubble(key, who, text, cls) {
  let el = key && chat.bubbles.get(key);
  if (!el) {
    el = document.createElement('div');
    el.className = `msg ${who}`;
    if (key) chat.bubbles.set(key, el);
    $('log').append(el);
  }
  el.textContent = text;
  el.classList.remove('pending', 'streaming');
  if (cls) el.classList.add(cls);
  $('log').scrollTop = $('log').scrollHeight;
  return el;
}

function systemLine(text) {
  const el = document.createElement('div');
  el.className = 'sys';
  el.textContent = text;
  $('log').append(el);
  $('log').scrollTop = $('log').scrollHeight;
}

function enableControls(on) {
  for (const id of ['talk', 'text', 'send', 'clear']) $(id).disabled = !on;
  if (!on) release();
}

// ---- the server ----

function send(msg) {
  if (chat.ws && chat.ws.readyState === WebSocket.OPEN) chat.ws.send(JSON.stringify(msg));
}

async function start() {
  $('connect').disabled = true;
  notice('');
  chat.error = '';
  chat.closing = '';
  chat.greeted = false;
  try {
    if (!chat.mic) {
      setStatus('Asking for the microphone…', 'busy');
      chat.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      meters();
    }
  } catch (e) {
    setStatus(`No microphone: ${e.message}`, 'error');
    $('connect').disabled = false;
    return;
  }
  setStatus('Connecting to the server…', 'busy');
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  chat.ws = ws;
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => { if (chat.ws === ws) onClosed(e); };
}

function stopCall() {
  chat.ready = false;
  enableControls(false);
  if (chat.pc) chat.pc.close();
  chat.pc = null;
  chat.pendingIce = [];
}

// Why a server refused a new conversation: it answered the WebSocket's
// upgrade with HTTP 503, which the browser does not show; /healthz says.
async function refusalReason() {
  try {
    const health = await (await fetch('/healthz', { cache: 'no-store' })).json();
    if (health.status === 'draining') return 'This server is shutting down and takes no new conversations. Try again in a minute.';
    if (health.status === 'full') return 'This server is busy: it holds all the conversations it can. Try again later.';
  } catch (e) {
    return 'Cannot reach the server.';
  }
  return '';
}

async function onClosed(e) {
  chat.ws = null;
  stopCall();
  const refused = !chat.greeted && !chat.error ? await refusalReason() : '';
  if (refused) {
    chat.error = refused;
    notice(refused);
  }
  if (chat.closing) {
    setStatus(`${chat.closing}`, 'error');
  } else if (chat.error) {
    setStatus(`Stopped: ${chat.error}`, 'error');
  } else if (e.code === 1001) {
    setStatus('The server is shutting down. Press Reconnect when it is back.', 'error');
  } else {
    setStatus('Lost the connection to the server (it may have restarted). Press Reconnect.', 'error');
  }
  $('connect').textContent = 'Reconnect';
  $('connect').hidden = false;
  $('connect').disabled = false;
}

async function onOffer(sdp) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  chat.pc = pc;
  pc.onicecandidate = (e) => send({
    type: 'ice',
    candidate: e.candidate ? e.candidate.candidate : '',
    sdpMLineIndex: e.candidate ? e.candidate.sdpMLineIndex : 0,
  });
  pc.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    $('remote').srcObject = stream;
    $('remote').play().catch(() => notice('Tap anywhere to hear the answers.'));
    meters(stream);
  };
  pc.onconnectionstatechange = () => {
    if (pc !== chat.pc) return;
    if (pc.connectionState === 'failed') {
      setStatus('The audio connection failed (WebRTC). Press Reconnect.', 'error');
      chat.ws && chat.ws.close();
    } else if (pc.connectionState === 'connected' && !chat.ready) {
      setStatus('Audio connected. Waiting for the voice service…', 'busy');
    }
  };
  await pc.setRemoteDescription({ type: 'offer', sdp });
  for (const track of chat.mic.getAudioTracks()) pc.addTrack(track, chat.mic);
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  send({ type: 'answer', sdp: answer.sdp });
  send({ type: 'mode', value: chat.mode });
  for (const c of chat.pendingIce.splice(0)) await pc.addIceCandidate(c);
}

function onIce(msg) {
  const c = { candidate: msg.candidate, sdpMLineIndex: msg.sdpMLineIndex };
  if (chat.pc && chat.pc.remoteDescription) chat.pc.addIceCandidate(c).catch(() => {});
  else chat.pendingIce.push(c);
}

function onMessage(msg) {
  switch (msg.type) {
    case 'hello':
      chat.greeted = true;
      if ($('log').children.length) {
        systemLine('Connected again: a new conversation starts here; the agent does not remember the one above.');
      }
      $('connect').hidden = true;
      setStatus('Connected to the server. Setting up audio…', 'busy');
      break;
    case 'offer':
      onOffer(msg.sdp).catch((e) => setStatus(`WebRTC setup failed: ${e.message}`, 'error'));
      break;
    case 'ice':
      onIce(msg);
      break;
    case 'event':
      onEvent(msg);
      break;
    case 'done':
      onDone(msg);
      break;
    case 'warning':
      notice(msg.message);
      break;
    case 'draining':
      notice(`This server is shutting down: this conversation can go on for up to ${msg.seconds} s.`);
      break;
    case 'closing':
      chat.closing = msg.message;
      systemLine(msg.message);
      notice('');
      break;
    case 'error':
      chat.error = msg.message;
      notice(msg.message);
      setStatus(`Error: ${msg.message}`, 'error');
      break;
  }
}

// The element's bus messages yandexrealtime/<name> (docs/yandexrealtime.md).
function onEvent(ev) {
  switch (ev.name) {
    case 'connection':
      if (ev.state === 'connecting') setStatus('Connecting to the voice service…', 'busy');
      else if (ev.state === 'reconnecting') {
        chat.ready = false;
        setStatus(`Lost the voice service (${ev.reason}); reconnecting, attempt ${ev.attempt}…`, 'busy');
      } else if (ev.state === 'closed') {
        chat.ready = false;
        setStatus('The voice service closed the connection.', 'error');
      }
      break;
    case 'session':
      chat.ready = true;
      notice('');
      enableControls(true);
      $('talk').disabled = chat.mode !== 'ptt';
      readyStatus();
      break;
    case 'speech-started':
      bubble(`item:${ev['item-id']}`, 'user', 'Listening…', 'pending');
      break;
    case 'speech-stopped':
      bubble(`item:${ev['item-id']}`, 'user', 'Transcribing…', 'pending');
      break;
    case 'transcript': {
      const key = `item:${ev['item-id']}`;
      const el = chat.bubbles.get(key);
      const before = el && !el.classList.contains('pending') ? el.textContent : '';
      bubble(key, 'user', ev.final ? ev.text : before + ev.text, ev.final ? '' : 'streaming');
      break;
    }
    case 'response-text': {
      const key = `resp:${ev['response-id']}`;
      const el = chat.bubbles.get(key);
      const before = el ? el.textContent : '';
      bubble(key, 'agent', ev.final ? ev.text : before + ev.text, ev.final ? '' : 'streaming');
      break;
    }
    case 'response-done': {
      chat.lastDone = ev;
      const el = chat.bubbles.get(`resp:${ev['response-id']}`);
      if (el && ev.status !== 'completed' && !el.querySelector('.tag')) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = ev.status === 'cancelled' ? 'interrupted' : ev.status;
        el.append(tag);
      }
      break;
    }
    case 'interrupted':
      systemLine(`You interrupted the answer after ${(ev['played-ms'] / 1000).toFixed(1)} s.`);
      break;
    case 'server-error':
      notice(`The voice service said: ${ev.message} (${ev.code})`);
      break;
  }
}

function onDone(msg) {
  if (msg.what === 'clear') {
    if (msg.ok) {
      $('log').replaceChildren();
      chat.bubbles.clear();
      systemLine('History cleared: the agent starts afresh.');
    } else notice('Could not clear the history: the voice service is not connected.');
  } else if (msg.what === 'text' && !msg.ok) {
    notice('The message was not sent: the voice service is not connected.');
  }
}

// ---- push-to-talk: the button (mouse or touch) and the space bar ----

function press() {
  if (!chat.ready || chat.mode !== 'ptt' || chat.talking) return;
  chat.talking = true;
  $('talk').setAttribute('aria-pressed', 'true');
  $('talk-label').textContent = 'Listening… release to send';
  send({ type: 'talk', pressed: true });
}

function release() {
  if (!chat.talking) return;
  chat.talking = false;
  $('talk').setAttribute('aria-pressed', 'false');
  $('talk-label').textContent = 'Hold to talk';
  send({ type: 'talk', pressed: false });
}

const talk = $('talk');
talk.addEventListener('pointerdown', (e) => {
  talk.setPointerCapture(e.pointerId);
  press();
});
for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) talk.addEventListener(type, release);
talk.addEventListener('contextmenu', (e) => e.preventDefault());  // long press on phones
talk.addEventListener('keydown', (e) => { if (e.key === ' ' || e.key === 'Enter') e.preventDefault(); });

const typing = (e) => e.target instanceof HTMLInputElement && e.target.type === 'text';
window.addEventListener('keydown', (e) => {
  if (e.code !== 'Space' || typing(e)) return;
  e.preventDefault();
  if (!e.repeat) press();
});
window.addEventListener('keyup', (e) => {
  if (e.code !== 'Space' || typing(e)) return;
  e.preventDefault();
  release();
});
window.addEventListener('blur', release);  // a key held while the tab loses focus

// ---- the other controls ----

for (const radio of document.querySelectorAll('input[name=mode]')) {
  radio.addEventListener('change', () => {
    chat.mode = radio.value;
    release();
    talk.classList.toggle('hands-free', chat.mode !== 'ptt');
    $('talk-label').textContent = chat.mode === 'ptt' ? 'Hold to talk' : 'Hands-free: just speak';
    talk.disabled = !chat.ready || chat.mode !== 'ptt';
    send({ type: 'mode', value: chat.mode });
    readyStatus();
  });
}

$('typed').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  bubble(null, 'user', text);
  send({ type: 'text', text });
  $('text').value = '';
});

$('clear').addEventListener('click', () => send({ type: 'clear' }));
$('connect').addEventListener('click', start);
document.addEventListener('click', () => { if ($('remote').paused && $('remote').srcObject) $('remote').play(); });

// ---- levels: the meter, and the time from the end of speech to the answer ----

let audioCtx = null;
let micAnalyser = null;
let remoteAnalyser = null;
let speechEnd = 0;  // performance.now() when the user last stopped speaking
let lastLoud = 0;

function level(analyser, buf) {
  analyser.getFloatTimeDomainData(buf);
  let sum = 0;
  for (const v of buf) sum += v * v;
  return 10 * Math.log10(sum / buf.length + 1e-12);  // dBFS
}

function meters(remoteStream) {
  audioCtx = audioCtx || new AudioContext();
  const analyse = (stream) => {
    const a = audioCtx.createAnalyser();
    a.fftSize = 512;
    audioCtx.createMediaStreamSource(stream).connect(a);
    return a;
  };
  if (remoteStream) {
    remoteAnalyser = analyse(remoteStream);
    return;
  }
  micAnalyser = analyse(chat.mic);
  const buf = new Float32Array(512);
  const SOUND_DB = -45;
  setInterval(() => {
    if (audioCtx.state === 'suspended') audioCtx.resume();
    const now = performance.now();
    const mic = level(micAnalyser, buf);
    $('mic-level').style.width = `${Math.max(0, Math.min(100, (mic + 60) * 2))}%`;
    // Speech has short pauses between words: it ends after 250 ms below the line.
    if (mic > SOUND_DB) lastLoud = now;
    const speaking = lastLoud > 0 && now - lastLoud < 250;
    if (chat.micSpeaking && !speaking) speechEnd = lastLoud;
    chat.micSpeaking = speaking;
    if (!remoteAnalyser) return;
    const sounding = level(remoteAnalyser, buf) > SOUND_DB;
    if (sounding && !chat.remoteSounding && speechEnd) {
      const ms = Math.round(now - speechEnd);
      chat.latencies.push(ms);
      $('latency').textContent = `The answer began ${ms} ms after you stopped speaking.`;
      speechEnd = 0;
    }
    chat.remoteSounding = sounding;
  }, 10);
}
