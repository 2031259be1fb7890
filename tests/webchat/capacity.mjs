// Load for tests/bench/webchat-capacity.sh: N tabs of examples/webchat in
// one headless Chromium, all hands-free with the looping spoken question,
// for T seconds; prints one JSON line: per tab the answers heard, the
// inbound audio and the page's speech-end-to-answer times.
//
//   node capacity.mjs --url URL --wav question.wav --tabs N --seconds T
import { parseArgs, withChromium } from './chromium.mjs';

const args = parseArgs();
// every tab counts, not only the one in front
const extraArgs = ['--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows'];
await withChromium({ chromium: args.chromium, wav: args.wav, extraArgs, protocolTimeout: 60000 }, async (browser) => {
  const pages = [];
  for (let i = 0; i < Number(args.tabs); i++) {
    const page = await browser.newPage();
    await page.goto(args.url);
    await page.click('#connect');
    await page.waitForFunction(() => window.webchat.ready, { timeout: 30000 });
    await page.click('input[value="hands-free"]');
    pages.push(page);
  }
  process.stdout.write('START\n');
  await new Promise((r) => setTimeout(r, Number(args.seconds) * 1000));
  process.stdout.write('STOP\n');
  const tabs = [];
  for (const page of pages) {
    tabs.push(await page.evaluate(async () => {
      let packets = 0;
      (await window.webchat.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') packets = s.packetsReceived; });
      return { answers: document.querySelectorAll('.msg.agent').length, packets,
        latencies: window.webchat.latencies, ready: window.webchat.ready };
    }));
  }
  process.stdout.write(`${JSON.stringify(tabs)}\n`);
});
