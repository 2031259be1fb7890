// Drives examples/webchat's page in Debian's headless Chromium with
// puppeteer-core.  Run by tests/check/webchat.cpp, which owns the emulator
// and the server: this script asks it what the emulator saw by writing
// "? <question>" lines on stdout and reading one answer line on stdin.
// Every check prints "ok - ..." or throws; the exit status says which.
//
//   node drive.mjs --url http://127.0.0.1:PORT/ --wav question.wav
//                  --key <the API key, must never reach the page>
//                  [--shot screenshot.png] [--chromium /usr/bin/chromium]
//                  [--windows tone-windows.json]
import fs from 'node:fs';
import { ask, askNumber, check, sleep, waitFor } from './ask.mjs';
import { parseArgs, withChromium } from './chromium.mjs';

const args = parseArgs();
const url = args.url;

// ---- the page ----
const logText = (page) => page.$eval('#log', (e) => e.innerText);
const statusText = (page) => page.$eval('#status', (e) => e.textContent);
const pages = [];
const failedPages = [];
async function openTab(browser, frames) {
  const page = await browser.newPage();
  pages.push(page);
  await page.setViewport({ width: 420, height: 760, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  // Every WebSocket frame the page receives, to look for the key.
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketFrameReceived', (e) => frames.push(e.response.payloadData));
  await page.goto(url);
  await page.click('#connect');
  await page.waitForFunction(() => window.webchat.ready, { timeout: 15000 });
  return page;
}
async function inbound(page) {
  return page.evaluate(async () => {
    let r = null;
    (await window.webchat.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') r = s; });
    return r && { packets: r.packetsReceived, samples: r.totalSamplesReceived, duration: r.totalSamplesDuration,
      energy: r.totalAudioEnergy, concealed: r.concealedSamples };
  });
}
const micSpeaking = (page) => page.evaluate(() => window.webchat.micSpeaking);

// ---- what the page plays: the answers' 440 Hz tone, window by window ----
// The emulator answers with a 440 Hz tone (tests/emulator/synth.cpp), whole
// from its first sample to its last.  An AudioWorklet on the remote WebRTC
// stream (the one the page's <audio> plays, after Chromium's jitter buffer,
// decoder and concealment) measures every 10 ms window: the amplitude of its
// 440 Hz component (Goertzel) and its RMS.  The hook lives here, not in app.js.
const TONE_HZ = 440;
const WINDOW_MS = 10;
const SOUNDING = 0.05;   // 440 Hz amplitude (full scale 1) above which a window has the tone
const PAUSE_MS = 300;    // a pause this long ends an answer
const LOW = 0.8;         // inside an answer, a window below this share of its level is low...
const BREAK_MS = 30;     // ...and this long a run of low windows is a break
async function listen(page) {
  await page.waitForFunction(() => document.getElementById('remote').srcObject, { timeout: 15000 });
  await page.evaluate(async (toneHz, windowMs) => {
    const code = `
      class ToneMeter extends AudioWorkletProcessor {
        constructor() {
          super();
          this.n = Math.round(sampleRate * ${windowMs} / 1000);
          this.coeff = 2 * Math.cos(2 * Math.PI * ${toneHz} / sampleRate);
          this.i = this.s1 = this.s2 = this.sq = 0;
        }
        process(inputs) {
          const x = inputs[0] && inputs[0][0];
          for (let k = 0; x && k < x.length; k++) {
            const s = x[k] + this.coeff * this.s1 - this.s2;
            this.s2 = this.s1;
            this.s1 = s;
            this.sq += x[k] * x[k];
            if (++this.i === this.n) {
              const power = this.s1 * this.s1 + this.s2 * this.s2 - this.coeff * this.s1 * this.s2;
              this.port.postMessage([2 * Math.sqrt(Math.max(power, 0)) / this.n, Math.sqrt(this.sq / this.n)]);
              this.i = this.s1 = this.s2 = this.sq = 0;
            }
          }
          return true;
        }
      }
      registerProcessor('tone-meter', ToneMeter);`;
    const ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })));
    const meter = new AudioWorkletNode(ctx, 'tone-meter');
    const windows = window.toneWindows = [];  // [440 Hz amplitude, RMS] of each window, in order
    meter.port.onmessage = (e) => windows.push(e.data);
    ctx.createMediaStreamSource(document.getElementById('remote').srcObject).connect(meter);
    meter.connect(ctx.destination);  // so the graph pulls it; it outputs silence
    if (ctx.state === 'suspended') await ctx.resume();
  }, TONE_HZ, WINDOW_MS);
}
const toneWindows = (page, from = 0) => page.evaluate((n) => window.toneWindows.slice(n), from);
const toneCount = (page) => page.evaluate(() => window.toneWindows.length);

// The answers among `windows`: stretches of the tone, pauses shorter than
// PAUSE_MS inside.  Each: where it starts (ms from the first window), how long
// it sounds (from its first window with the tone to its last at LOW of its
// level: Chromium fades a stream out after its last packet), its level (the
// median amplitude), and its breaks: runs of windows at least BREAK_MS long
// in that span where the tone is below LOW of its level (or of the loudest
// window before, while it fades in) or gone.
function toneAnswers(windows) {
  const amp = windows.map((w) => w[0]);
  const pause = PAUSE_MS / WINDOW_MS;
  const answers = [];
  for (let i = 0; i < amp.length;) {
    if (amp[i] <= SOUNDING) { i++; continue; }
    let end = i + 1;  // one past the last sounding window
    for (let j = end; j < amp.length && j < end + pause; j++) if (amp[j] > SOUNDING) end = j + 1;
    const sounding = amp.slice(i, end).filter((a) => a > SOUNDING).sort((x, y) => x - y);
    const level = sounding[Math.floor(sounding.length / 2)];
    let last = end - 1;
    while (amp[last] < LOW * level) last--;
    const breaks = [];
    let loudest = 0;
    for (let k = i; k <= last; k++) {
      const low = (n) => amp[n] < LOW * Math.min(level, loudest);
      loudest = Math.max(loudest, amp[k]);
      if (!low(k)) continue;
      let m = k;
      while (m <= last && low(m)) m++;
      if ((m - k) * WINDOW_MS >= BREAK_MS) {
        breaks.push({ at: (k - i) * WINDOW_MS, ms: (m - k) * WINDOW_MS,
          low: Math.round(100 * Math.min(...amp.slice(k, m)) / level) });
      }
      k = m;
    }
    answers.push({ start: i * WINDOW_MS, ms: (last - i + 1) * WINDOW_MS, level, breaks });
    i = end;
  }
  return answers;
}

// The windows from `from` on, once `count()` answers have been played there
// and PAUSE_MS has passed without the tone.
async function playedOut(page, from, what, count) {
  const pause = PAUSE_MS / WINDOW_MS;
  let heard = 0;
  let due = 0;
  return waitFor(`${what} to be played`, async () => {
    const w = await toneWindows(page, from);
    due = await count();
    heard = toneAnswers(w).length;
    const quiet = w.length > pause && w.slice(-pause).every((x) => x[0] <= SOUNDING);
    return quiet && heard >= due ? w : null;
  }, 20000).catch((e) => { throw new Error(`${e.message} (${heard} of ${due} played)`); });
}

// Checks that the answers in `windows` were played whole: as many as the
// emulator spoke (`lengths`, their lengths in ms), each with no break inside
// and no more than one 20 ms Opus frame missing.
function checkWhole(windows, what, lengths) {
  const answers = toneAnswers(windows);
  const describe = (a) => `${a.ms} ms at ${(20 * Math.log10(a.level)).toFixed(1)} dBFS` + (a.breaks.length
    ? `, broken: ${a.breaks.map((b) => `at +${b.at} ms for ${b.ms} ms, the tone down to ${b.low} % of its level`).join('; ')}`
    : '');
  console.log(`what the page played (${what}): ` +
    `${answers.map((a, i) => `answer ${i + 1} at ${a.start} ms, ${describe(a)}`).join(' | ') || 'nothing'}`);
  check(answers.length === lengths.length, `the page played ${what}`,
    `${answers.length} answers heard, ${lengths.length} spoken`);
  const broken = answers.findIndex((a) => a.breaks.length);
  check(broken < 0, `no break inside ${what} as the page played them (the 440 Hz tone in every ${WINDOW_MS} ms window)`,
    broken < 0 ? `${answers.length} answers` : `answer ${broken + 1}: ${describe(answers[broken])}`);
  const short = answers.findIndex((a, i) => a.ms < lengths[i] - 20);
  check(short < 0, `${what} played in full`, `${answers.map((a, i) => `${a.ms} ms of ${lengths[i]}`).join(', ')}`);
}

async function main() {
  const frames = [];
  await withChromium({ chromium: args.chromium, wav: args.wav }, async (browser) => {
    try {
      await conversation(browser, frames);
    } catch (e) {
      for (const p of pages) {
        if (!p.isClosed()) failedPages.push(await p.evaluate(() => document.body.innerText).catch(() => '?'));
      }
      throw e;
    } finally {
      // Every window the first tab measured, for a look: [440 Hz amplitude, RMS], 10 ms each.
      if (args.windows && pages[0] && !pages[0].isClosed()) {
        const w = await toneWindows(pages[0]).catch(() => []);
        fs.writeFileSync(args.windows, JSON.stringify(w));
      }
    }
  });
}

async function conversation(browser, frames) {
  // -- tab A, push-to-talk: nothing is sent before the button is pressed
  const a = await openTab(browser, frames);
  await listen(a);
  check(/Hold the button/.test(await statusText(a)), 'the page says it is connected, in words', await statusText(a));
  await sleep(1500);
  check(await askNumber('audio-ms') === 0, 'push-to-talk, not pressed: the service received no audio');

  // -- a spoken question: press when the (looping) speech starts, release
  // 300 ms after it ends, as a person would
  await waitFor('silence in the microphone', async () => !(await micSpeaking(a)));
  await waitFor('speech in the microphone', () => micSpeaking(a));
  const talk = await a.$('#talk');
  const box = await talk.boundingBox();
  await a.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await a.mouse.down();
  const pressed = Date.now();
  await waitFor('the end of the speech', async () => !(await micSpeaking(a)));
  await sleep(300);
  await a.mouse.up();
  console.log(`held the button for ${Date.now() - pressed} ms`);
  const atRelease = await askNumber('audio-ms');
  check(atRelease > 1000, 'while pressed the service received the speech', `${atRelease} ms`);

  const question = await ask('question-transcript');
  const answerText = await ask('answer-text');
  await waitFor('the transcript on the page', async () => (await logText(a)).includes(question));
  check(true, 'the question\'s transcript is on the page', question);
  await waitFor('the answer text on the page', async () => (await logText(a)).includes(answerText));
  check(true, 'the answer\'s text is on the page', answerText);

  // -- the answer's audio reached the browser over WebRTC
  const answerMs = await askNumber('answer-ms');
  let last = null;
  const stats = await waitFor('the answer audio in inbound-rtp', async () => {
    const s = last = await inbound(a);
    // within one 20 ms Opus frame (the last one goes out when the element goes idle)
    const due = answerMs - 20;
    return s && (s.samples - s.concealed) / 48 >= due && s.packets * 20 >= due ? s : null;
  }).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(last)}, answer ${answerMs} ms`); });
  check(answerMs > 1000, 'the emulator spoke an answer', `${answerMs} ms`);
  check(true, 'the answer\'s audio arrived (inbound-rtp)', `${stats.packets} packets of 20 ms, ` +
    `${stats.samples - stats.concealed} samples received and not concealed = ` +
    `${Math.round((stats.samples - stats.concealed) / 48)} ms at 48 kHz, answer ${answerMs} ms`);
  check(stats.energy > 0, 'the audio was not silence', `totalAudioEnergy ${stats.energy.toFixed(3)}`);

  // -- released: nothing after the element's closing silence
  const afterAnswer = await askNumber('audio-ms');
  await sleep(2000);
  const later = await askNumber('audio-ms');
  check(later === afterAnswer, 'push-to-talk released: the service received no audio since',
    `${afterAnswer} ms then ${later} ms`);
  const peak = await askNumber(`peak-since ${atRelease + 100}`);
  check(peak < 200, 'what followed the release was the closing silence', `peak ${peak}`);

  const latency = await a.evaluate(() => window.webchat.latencies[0]);
  const element = await a.evaluate(() => window.webchat.lastDone && window.webchat.lastDone['first-audio-latency']);
  console.log(`LATENCY push-to-talk: page ${latency} ms (speech end -> answer sound; includes the 300 ms hold), ` +
    `element first-audio-latency ${element / 1e6} ms`);

  // -- a typed message
  const beforeTyped = await toneCount(a);
  await a.type('#text', 'Will it rain tomorrow?');
  await a.click('#send');
  const typedAnswer = await ask('typed-answer');
  await waitFor('the typed message\'s answer', async () => (await logText(a)).includes(typedAnswer));
  check(true, 'a typed message is answered (send-text)');
  // -- what the page played of both answers: whole, no break inside
  await playedOut(a, beforeTyped, 'the typed message\'s answer', async () => 1);
  const typedMs = await askNumber('answer-ms') - answerMs;
  checkWhole(await toneWindows(a), 'the spoken question\'s answer and the typed message\'s', [answerMs, typedMs]);
  if (args.shot) {
    await a.screenshot({ path: args.shot });
    console.log(`screenshot: ${args.shot}`);
  }

  // -- tab B: its own conversation
  const b = await openTab(browser, frames);
  check(await askNumber('sessions-active') === 2, 'two tabs: two sessions with the service');
  await b.type('#text', 'Tell me a joke');
  await b.click('#send');
  await waitFor('tab B\'s answer', async () => (await logText(b)).includes('answer 1'));
  await a.bringToFront();
  const logA = await logText(a);
  const logB = await logText(b);
  check(!logA.includes('joke') && !logB.includes('rain') && !logB.includes(answerText),
    'two tabs hold separate conversations (B\'s first answer is its own "answer 1")');

  // -- clear history reaches the element
  await a.bringToFront();
  const deletes = await askNumber('count conversation.item.delete');
  await a.click('#clear');
  await waitFor('conversation.item.delete at the service',
    async () => (await askNumber('count conversation.item.delete')) > deletes);
  await waitFor('the cleared page', async () => (await logText(a)).includes('History cleared'));
  check(!(await logText(a)).includes(answerText), 'clear-history reaches the element and the page');

  // -- a tab that closes frees its pipeline at once
  await b.close();
  const closed = Date.now();
  await waitFor('tab B\'s session to close', async () => (await askNumber('sessions-active')) === 1, 3000);
  check(true, 'a closed tab frees its pipeline', `${Date.now() - closed} ms`);

  // -- push-to-talk by the space bar and by a touch, as by the mouse above
  const eachMs = await askNumber('default-answer-ms');
  for (const [how, down, up] of [
    ['the space bar', () => a.keyboard.down('Space'), () => a.keyboard.up('Space')],
    ['a touch', async () => {
      const r = await (await a.$('#talk')).boundingBox();
      await a.touchscreen.touchStart(r.x + r.width / 2, r.y + r.height / 2);
    }, () => a.touchscreen.touchEnd()],
  ]) {
    const before = await askNumber('audio-ms');
    const windowsBefore = await toneCount(a);
    const spokenBefore = await askNumber('answer-ms');
    await down();
    const shown = await a.$eval('#talk', (e) => e.getAttribute('aria-pressed'));
    await sleep(600);
    await up();
    await sleep(1000);
    const held = await askNumber('audio-ms') - before;
    const after = await a.$eval('#talk', (e) => e.getAttribute('aria-pressed'));
    // 600 ms held, then the element's closing silence (silence-duration-ms + 300 ms)
    check(shown === 'true' && after === 'false' && held >= 1000 && held <= 2500,
      `push-to-talk by ${how}`, `${held} ms of audio reached the service`);
    // Its answer, if the service heard speech in those 600 ms of the looping
    // question, played whole (and over before the next press).
    await sleep(1000);
    const spoken = async () => Math.round((await askNumber('answer-ms') - spokenBefore) / eachMs);
    checkWhole(await playedOut(a, windowsBefore, `the answer to ${how}`, spoken), `the answer to ${how}`,
      Array(await spoken()).fill(eachMs));
  }

  // -- hands-free: the service's VAD ends the turns; speaking over an answer interrupts it
  await ask('long-answers');
  const measured = await a.evaluate(() => window.webchat.latencies.length);
  await a.click('input[value="hands-free"]');
  await waitFor('an interrupted answer', async () => (await logText(a)).includes('You interrupted'), 20000);
  check(true, 'hands-free: turns without pressing, and barge-in');
  const handsFree = await a.evaluate((n) => window.webchat.latencies.slice(n), measured);
  console.log(`LATENCY hands-free: page ${JSON.stringify(handsFree)} ms (speech end -> answer sound)`);

  // -- the server restarts: the page says so and reconnects
  await ask('restart-server');
  await waitFor('the page to notice', async () => /Reconnect|server/.test(await statusText(a)) &&
    !(await a.evaluate(() => window.webchat.ready)));
  check(true, 'a server restart: the page says so', await statusText(a));
  await a.click('#connect');
  await a.waitForFunction(() => window.webchat.ready, { timeout: 15000 });
  check((await logText(a)).includes('a new conversation starts here'), 'and reconnects, saying the conversation is new',
    await statusText(a));

  // -- credentials stay on the server
  const key = args.key;
  const html = await a.content();
  check(key && !frames.some((f) => f.includes(key)) && !html.includes(key),
    'the API key never reached the page', `${frames.length} WebSocket frames checked`);
}

main().then(() => process.exit(0), (e) => {
  console.log(e.message);
  for (const p of failedPages) console.log(`the page said:\n${p}`);
  process.exit(1);
});
