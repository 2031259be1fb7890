// Debian's headless Chromium for the webchat tests: the flags they all use
// (no network of its own, a fresh profile, a fake microphone playing `wav`),
// and the command-line parsing of their scripts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

// --name value pairs -> { name: value }
export function parseArgs(argv = process.argv.slice(2)) {
  const args = {};
  for (let i = 0; i + 1 < argv.length; i++) {
    if (argv[i].startsWith('--')) args[argv[i].slice(2)] = argv[++i];
  }
  return args;
}

// Runs `use(browser)` in a fresh Chromium, then closes it and removes its profile.
export async function withChromium({ chromium, wav, extraArgs = [], protocolTimeout = 30000 }, use) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'webchat-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: chromium || '/usr/bin/chromium',
    headless: true,
    protocolTimeout,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`, '--autoplay-policy=no-user-gesture-required',
      ...extraArgs],
  });
  try {
    return await use(browser);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
