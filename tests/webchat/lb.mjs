// Drives the webchat-lb suite (tests/check/webchat-lb.cpp): two webchat
// instances, A and B, behind nginx (examples/webchat/nginx.conf), and real
// headless Chromium tabs through nginx, each in a browser context of its own
// (its own cookie, as separate users).  The tabs spread over both instances;
// SIGTERM to A: its open tabs go on (one finishes, one gets the closing
// message at the end of the drain), new tabs all go to B, and no tab of B
// notices.  Each instance's /metrics is parsed by the Prometheus client's
// text parser (metrics.py) and its values checked against what the pages saw.
//
//   node lb.mjs --lb URL --a URL --b URL --wav question.wav --access-log PATH
//               --drain-seconds S --max-sessions N [--chromium /usr/bin/chromium]
//
// Questions to the test program: "term a" (SIGTERM to A), "exit a" (A's exit
// status, once it has exited), "udp-ports a|b" (the UDP ports A's or B's
// process has open: where its ICE candidates are).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { ask, check, sleep, waitFor } from './ask.mjs';
import { parseArgs, withChromium } from './chromium.mjs';

const args = parseArgs();
const portOf = (url) => Number(new URL(url).port);
const inst = { a: { name: 'A', url: args.a, port: portOf(args.a) }, b: { name: 'B', url: args.b, port: portOf(args.b) } };
const lbPort = portOf(args.lb);
const drainSeconds = Number(args['drain-seconds']);
const maxSessions = Number(args['max-sessions']);

// ---- /healthz and /metrics ----

async function health(url, cookie) {
  const r = await fetch(new URL('/healthz', url), { headers: cookie ? { Cookie: `webchat=${cookie}` } : {} });
  return { status: r.status, setCookie: r.headers.get('set-cookie'), body: await r.json() };
}
const instanceOf = (body) => Object.keys(inst).find((k) => body.instance.endsWith(`:${inst[k].port}`));

// The families of an instance's /metrics, as the Prometheus parser read them.
function scrape(which) {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', [new URL('metrics.py', import.meta.url).pathname, new URL('/metrics', inst[which].url).href],
      (err, stdout, stderr) => (err ? reject(new Error(`FAILED: metrics.py: ${stderr || err.message}`)) : resolve(JSON.parse(stdout))));
  });
}
const PREFIX = 'yandexrealtime_webchat_';
// The value of the sample `name` with exactly `labels`, from the family of type `type`.
function value(families, name, type, labels = {}) {
  for (const f of Object.values(families)) {
    for (const s of f.samples) {
      if (s.name === PREFIX + name && JSON.stringify(s.labels) === JSON.stringify(labels)) {
        if (f.type !== type) throw new Error(`FAILED: ${s.name} is in a ${f.type}, not a ${type}`);
        return s.value;
      }
    }
  }
  throw new Error(`FAILED: no sample ${PREFIX}${name} ${JSON.stringify(labels)} in /metrics`);
}
const gauge = (m, name) => value(m, name, 'gauge');
const counter = (m, name, labels) => value(m, `${name}_total`, 'counter', labels);
async function conversations(which) {
  const m = await scrape(which);
  return { open: gauge(m, 'conversations_open'), total: counter(m, 'conversations') };
}

// The answer latency histogram, checked for shape: cumulative buckets, the
// +Inf bucket equal to _count.
function histogram(families) {
  const f = families[`${PREFIX}answer_latency_seconds`];
  if (!f || f.type !== 'histogram') throw new Error('FAILED: no answer_latency_seconds histogram in /metrics');
  const buckets = f.samples.filter((s) => s.name.endsWith('_bucket'))
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), n: s.value }));
  const count = f.samples.find((s) => s.name.endsWith('_count')).value;
  const sum = f.samples.find((s) => s.name.endsWith('_sum')).value;
  const ordered = buckets.every((b, i) => i === 0 || (b.le > buckets[i - 1].le && b.n >= buckets[i - 1].n));
  check(ordered && buckets.at(-1).le === Infinity && buckets.at(-1).n === count,
    'the answer latency histogram: cumulative buckets in order, +Inf = _count',
    buckets.map((b) => `le ${b.le}: ${b.n}`).join(', '));
  return { count, sum, buckets };
}

// ---- the tabs ----

const tabs = [];
const extraArgs = ['--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows'];

// A tab in a browser context of its own, with the sticky cookie `cookie`
// (none: nginx gives it one), on `url`; it presses Start.  What the server
// sends it is counted from the WebSocket frames Chromium received.
async function openTab(browser, name, url, cookie) {
  const context = await browser.createBrowserContext();
  if (cookie) await context.setCookie({ name: 'webchat', value: cookie, domain: '127.0.0.1', path: '/' });
  const page = await context.newPage();
  page.setDefaultNavigationTimeout(60000);  // a loaded machine
  const tab = { name, context, page, completed: 0, speechStopped: 0, draining: 0, closing: 0, reconnecting: 0,
    closed: false };
  tabs.push(tab);
  page.on('pageerror', (e) => console.log(`${name}: page error: ${e.message}`));
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketFrameReceived', (e) => {
    const msg = JSON.parse(e.response.payloadData);
    if (msg.type === 'draining') tab.draining++;
    if (msg.type === 'closing') tab.closing++;
    if (msg.type !== 'event') return;
    if (msg.name === 'response-done' && msg.status === 'completed') tab.completed++;
    if (msg.name === 'speech-stopped') tab.speechStopped++;
    if (msg.name === 'connection' && msg.state === 'reconnecting') tab.reconnecting++;
  });
  cdp.on('Network.webSocketClosed', () => { tab.closed = true; });
  await page.goto(url);
  await page.click('#connect');
  return tab;
}

// Waits for the voice service's session, then hands-free: the looping
// question is a turn every 5 s.
async function converse(tab) {
  await tab.page.waitForFunction(() => window.webchat.ready, { timeout: 20000 });
  await tab.page.click('input[value="hands-free"]');
  await waitFor(`${tab.name}'s WebRTC connection`,
    () => tab.page.evaluate(() => window.webchat.pc && window.webchat.pc.connectionState === 'connected'), 20000);
}

const pageState = (tab) => tab.page.evaluate(() => ({
  ready: window.webchat.ready,
  status: document.getElementById('status').textContent,
  notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent,
  systemLines: [...document.querySelectorAll('#log .sys')].map((e) => e.textContent),
}));

// The remote end of the tab's selected ICE candidate pair: where its media goes.
const mediaPeer = (tab) => tab.page.evaluate(async () => {
  const stats = await window.webchat.pc.getStats();
  let pair = null;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
  const remote = pair && stats.get(pair.remoteCandidateId);
  return remote && { address: remote.address, port: remote.port, protocol: remote.protocol };
});

const sum = (list, key) => list.reduce((n, t) => n + t[key], 0);

async function main() {
  await withChromium({ chromium: args.chromium, wav: args.wav, extraArgs, protocolTimeout: 60000 }, async (browser) => {
    try {
      await scaleOut(browser);
    } catch (e) {
      for (const t of tabs) {
        if (!t.page.isClosed()) {
          const s = await pageState(t).catch(() => null);
          console.log(`${t.name}: ${JSON.stringify(s)} completed=${t.completed} draining=${t.draining} closing=${t.closing}`);
        }
      }
      throw e;
    }
  });
}

async function scaleOut(browser) {
  // -- sticky by cookie: nginx hashes the cookie to an instance
  // (cookies user-0, user-1, ... until A has three and B two: the hash of
  // fixed strings over the instances' random ports, so which ones varies)
  const cookies = { a: [], b: [] };
  const probes = [];
  for (let i = 0; i < 64 && (cookies.a.length < 3 || cookies.b.length < 2); i++) {
    const h = await health(args.lb, `user-${i}`);
    probes.push(`user-${i} ${h.status} ${h.body.status} ${h.body.instance}`);
    if (h.status === 200 && instanceOf(h.body)) cookies[instanceOf(h.body)].push(`user-${i}`);
  }
  check(cookies.a.length >= 3 && cookies.b.length >= 2 && probes.every((p) => / 200 ok /.test(p)),
    'nginx spreads the cookies over both instances (/healthz through nginx: 200, ok)',
    `A: ${cookies.a.join(' ')}; B: ${cookies.b.join(' ')}`);
  const moved = [];
  for (const k of ['a', 'b']) {
    for (const c of cookies[k]) {
      for (let i = 0; i < 3; i++) if (instanceOf((await health(args.lb, c)).body) !== k) moved.push(c);
    }
  }
  check(moved.length === 0, 'each cookie sticks to its instance (three more requests each)', moved.join(' '));
  const fresh = await health(args.lb);
  const given = /^webchat=([0-9a-f]{32});/.exec(fresh.setCookie || '');
  check(given && !(await health(args.lb, given[1])).setCookie, 'a browser without the cookie is given one, once', fresh.setCookie);
  const home = instanceOf(fresh.body);
  const homes = [];
  for (let i = 0; i < 3; i++) homes.push(instanceOf((await health(args.lb, given[1])).body));
  check(homes.every((h) => h === home), `and keeps to the instance of its first request with it (${inst[home].name})`);

  // -- four tabs through nginx: two on each instance
  const [a1, a2, b1, b2] = [
    await openTab(browser, 'A1', args.lb, cookies.a[0]), await openTab(browser, 'A2', args.lb, cookies.a[1]),
    await openTab(browser, 'B1', args.lb, cookies.b[0]), await openTab(browser, 'B2', args.lb, cookies.b[1])];
  for (const t of [a1, a2, b1, b2]) await converse(t);
  for (const k of ['a', 'b']) {
    const c = await conversations(k);
    check(c.open === 2 && c.total === 2, `the tabs spread: ${inst[k].name} holds two conversations (its /metrics)`,
      JSON.stringify(c));
  }
  // -- the media goes straight to the instance (ICE), not through nginx
  for (const [t, k] of [[a1, 'a'], [a2, 'a'], [b1, 'b'], [b2, 'b']]) {
    const ports = (await ask(`udp-ports ${k}`)).split(' ').map(Number);
    const peer = await mediaPeer(t);
    check(peer && peer.protocol === 'udp' && peer.address === '127.0.0.1' && ports.includes(peer.port) &&
      peer.port !== lbPort, `${t.name}'s audio goes over UDP to a port of ${inst[k].name}'s process`,
      `${JSON.stringify(peer)}; ${inst[k].name} has UDP ports ${ports.join(' ')}`);
  }
  await waitFor('an answer in every tab', () => [a1, a2, b1, b2].every((t) => t.completed >= 1), 30000);
  check(true, 'every tab had a spoken question answered', [a1, a2, b1, b2].map((t) => `${t.name} ${t.completed}`).join(', '));
  const bBefore = await Promise.all([b1, b2].map(pageState));

  // -- SIGTERM to A: it drains
  await ask('term a');
  const atTerm = { a1: a1.completed, b: [b1.completed, b2.completed], ms: Date.now() };
  // How long after the SIGTERM: what needs A alive must come before the drain's end.
  const since = () => `${((Date.now() - atTerm.ms) / 1000).toFixed(1)} s after the SIGTERM`;
  const drained = await waitFor('A\'s /healthz to say draining', async () => {
    const h = await health(inst.a.url);
    return h.status === 503 && h.body.status === 'draining' && h.body;
  }, 5000);
  check(drained.sessions === 2 && drained.drain_seconds_left <= drainSeconds, 'A\'s /healthz: 503, draining',
    JSON.stringify(drained));
  const bHealth = await health(inst.b.url);
  check(bHealth.status === 200 && bHealth.body.status === 'ok', 'B\'s /healthz: 200, ok', JSON.stringify(bHealth.body));
  await waitFor('A\'s tabs to be told', async () => a1.draining === 1 && a2.draining === 1 &&
    (await Promise.all([a1, a2].map(pageState))).every((s) => s.ready && /shutting down/.test(s.notice)), 10000);
  check(true, 'A\'s open tabs are told the server is stopping, and go on', `${(await pageState(a1)).notice}; ${since()}`);

  // -- a new tab whose cookie points at A goes to B (its WebSocket, at
  // once; its conversation is waited for after the checks that need A)
  const n1 = await openTab(browser, 'N1', args.lb, cookies.a[2]);
  await n1.page.waitForFunction(() => window.webchat.ws && window.webchat.ws.readyState === WebSocket.OPEN,
    { timeout: 10000 });
  const [aNow, bNow] = [await conversations('a'), await conversations('b')];
  check(aNow.total === 2 && bNow.total === 3 && bNow.open === 3, 'a new tab with A\'s cookie went to B',
    `A ${JSON.stringify(aNow)}, B ${JSON.stringify(bNow)}; ${since()}`);
  const viaLb = await health(args.lb, cookies.a[2]);
  check(viaLb.status === 200 && instanceOf(viaLb.body) === 'b', 'nginx sends A\'s users to B now', JSON.stringify(viaLb.body));

  // -- a tab that reaches A directly is refused, in words
  const direct = await openTab(browser, 'A-direct', args.a);
  const refused = await waitFor('the refusal on the page', async () => {
    const s = await pageState(direct);
    return /shutting down and takes no new conversations/.test(s.status) && !s.ready && s;
  });
  check(true, 'a new tab on A itself is refused, and the page says why', `${refused.status}; ${since()}`);
  await direct.page.close();

  // -- A1 goes on talking during the drain, then its user leaves
  // (a turn every 5 s: it comes well before the drain's end, 2 s before which this gives up)
  await waitFor('an answer in A1 during the drain', () => a1.completed > atTerm.a1,
    Math.max(0, atTerm.ms + (drainSeconds - 2) * 1000 - Date.now()));
  check(true, 'A1\'s conversation went on during the drain', `${a1.completed - atTerm.a1} more answers; ${since()}`);
  await a1.page.close();
  const aDraining = await waitFor('A to see A1 go', async () => {
    const m = await scrape('a');
    return gauge(m, 'conversations_open') === 1 && m;
  }, 10000);
  check(gauge(aDraining, 'draining') === 1 && counter(aDraining, 'conversations') === 2 &&
    counter(aDraining, 'conversations_refused', { reason: 'draining' }) === 2 &&
    counter(aDraining, 'conversations_refused', { reason: 'full' }) === 0,
  'A\'s /metrics while draining: draining 1, one open of two, two tabs refused (through nginx, then directly)',
  since());

  await converse(n1);
  check(true, 'N1 talks to B');

  // -- the drain ends: A2 is closed with the message, A exits 0
  await waitFor('A2 to be closed at the end of the drain', () => a2.closing === 1 && a2.closed, drainSeconds * 1000 + 5000);
  const a2State = await pageState(a2);
  check(!a2State.ready && /shutting down: this conversation ends here/.test(a2State.status) &&
    a2State.systemLines.some((l) => /ends here/.test(l)), 'A2 was closed with a message the page shows',
  `${a2State.status}; ${since()}`);
  check(await ask('exit a') === '0', 'A exited with status 0');

  // -- with A gone, new tabs still go to B
  const atExit = [b1.completed, b2.completed];
  const n2 = await openTab(browser, 'N2', args.lb, cookies.a[0]);
  await converse(n2);
  const bFull = await conversations('b');
  check(bFull.total === 4 && bFull.open === 4, 'with A gone, a new tab with A\'s cookie goes to B', JSON.stringify(bFull));

  // -- B at --max-sessions: /healthz says full, and a tab on B is refused as busy
  const full = await health(inst.b.url);
  check(maxSessions === 4 && full.status === 503 && full.body.status === 'full', 'B full: /healthz 503, full',
    JSON.stringify(full.body));
  const busy = await openTab(browser, 'B-busy', args.b);
  const busyState = await waitFor('the busy page', async () => {
    const s = await pageState(busy);
    return /busy/.test(s.status) && !s.ready && s;
  });
  check(true, 'a tab on a full B is refused as busy, in words', busyState.status);
  await busy.page.close();

  // -- B's tabs noticed nothing, and go on
  await waitFor('an answer in B1 and B2 after A exited', () => b1.completed > atExit[0] && b2.completed > atExit[1], 15000);
  for (const [i, t] of [b1, b2].entries()) {
    const s = await pageState(t);
    // (its log may say the user interrupted an answer: hands-free barge-in, the conversation's own)
    const own = s.systemLines.every((l) => /^You interrupted the answer/.test(l));
    check(s.ready && !t.closed && t.draining === 0 && t.closing === 0 && t.reconnecting === 0 && !s.notice &&
      own && s.status === bBefore[i].status,
    `${t.name} noticed nothing: same status, no notice, no line in its log but its own barge-ins, no reconnection, ` +
    'its WebSocket open', `"${s.status}"; ${t.completed - atTerm.b[i]} answers since the SIGTERM; log ${JSON.stringify(s.systemLines)}`);
  }

  // -- B's /metrics against what its pages saw: the tabs go push-to-talk
  // (no new turns), then its answer count must equal the pages' count
  const onB = [b1, b2, n1, n2];
  for (const t of onB) await t.page.click('input[value="ptt"]');
  let last = null;
  const mB = await waitFor('B\'s answers_total to equal the answers its pages got', async () => {
    const m = await scrape('b');
    last = `${counter(m, 'answers')} in /metrics, ${sum(onB, 'completed')} on the pages`;
    return counter(m, 'answers') === sum(onB, 'completed') && m;
  }, 15000).catch((e) => { throw new Error(`${e.message}: ${last}`); });
  check(true, 'B\'s answers_total = the completed answers its four tabs got', last);
  check(counter(mB, 'conversations') === 4 && gauge(mB, 'conversations_open') === 4 && gauge(mB, 'draining') === 0 &&
    gauge(mB, 'max_conversations') === 4 && counter(mB, 'conversations_refused', { reason: 'full' }) === 1 &&
    counter(mB, 'conversations_refused', { reason: 'draining' }) === 0,
  'B\'s /metrics: four conversations served and open, one tab refused as full, not draining');
  check(counter(mB, 'reconnects') === 0 && counter(mB, 'errors') === 0 && counter(mB, 'service_errors') === 0,
    'B: no reconnection, no error');
  const h = histogram(mB);
  const speech = sum(onB, 'speechStopped');
  check(h.count >= counter(mB, 'answers') && h.count <= speech && h.sum / h.count > 0 && h.sum / h.count < 2.5,
    'B\'s answer latency: one observation per answered turn, at most one per speech-stopped, a sane mean',
    `${h.count} observations, ${counter(mB, 'answers')} answers, ${speech} speech-stopped, mean ${(1000 * h.sum / h.count).toFixed(1)} ms`);
  console.log(`LATENCY speech-stopped -> first answer buffer (B): mean ${(1000 * h.sum / h.count).toFixed(1)} ms over ${h.count}`);

  // -- everyone leaves
  for (const t of onB) await t.page.close();
  await waitFor('B to close every conversation', async () => gauge(await scrape('b'), 'conversations_open') === 0, 10000);
  check(true, 'closed tabs free their conversations on B');

  // -- nginx's own log: which instance took each WebSocket (logged as it closes)
  const wsLines = () => fs.readFileSync(args['access-log'], 'utf8').split('\n')
    .map((l) => /"GET \/ws HTTP\/1\.1" (\d+) upstream=(.*) upstream_status=(.*)$/.exec(l)).filter(Boolean)
    .map((m) => ({ status: m[1], upstreams: m[2].split(', ').map((u) => Number(u.split(':').at(-1))),
      statuses: m[3].split(', ') }));
  const lines = await waitFor('nginx to log the six WebSockets', () => wsLines().length >= 6 && wsLines(), 5000);
  const to = (k) => lines.filter((l) => l.status === '101' && l.upstreams.at(-1) === inst[k].port).length;
  const skipped = lines.filter((l) => l.upstreams.length === 2 && l.upstreams[0] === inst.a.port &&
    l.upstreams[1] === inst.b.port && l.statuses[0] === '503' && l.statuses[1] === '101').length;
  check(lines.length === 6 && to('a') === 2 && to('b') === 4 && skipped >= 1,
    'nginx\'s log: six WebSockets, two to A, four to B, one refused by the draining A (503) and passed on to B',
    JSON.stringify(lines));
}

main().then(() => process.exit(0), (e) => {
  console.log(e.message);
  process.exit(1);
});
