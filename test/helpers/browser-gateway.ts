import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import { launchChromium } from './browser.js';
import { type RunningCli, runCli, startCli } from './cli.js';

export interface LocalUser {
  name: string;
  role: 'farmer' | 'technician';
  password: string;
}

export interface BrowserGateway {
  gw: RunningCli;
  browser: Browser;
  /** closes Chromium and kills the gateway */
  stop(): Promise<void>;
}

/**
 * `langbiang start --config FILE` as a technician runs it, with the given local users made first
 * (`langbiang user add`, password on stdin), and headless Chromium launched beside it; resolves
 * once the gateway's HTTP port listens.
 */
export async function startGatewayWithBrowser(config: string, users: LocalUser[]): Promise<BrowserGateway> {
  for (const u of users) {
    const made = await runCli(['user', 'add', u.name, '--role', u.role, '--config', config], {
      input: `${u.password}\n`,
    });
    expect(made.code, made.stderr).toBe(0);
  }
  const gw = startCli(['start', '--config', config]);
  const launching = launchChromium();
  let browser: Browser;
  try {
    [browser] = await Promise.all([launching, gw.waitFor('http listening', 20_000)]);
  } catch (err) {
    // a gateway that did not come up is not left running behind the failed test
    gw.child.kill('SIGKILL');
    await launching.then((b) => b.close()).catch(() => {});
    throw new Error(`${String(err)}\n--- gateway output ---\n${gw.output()}`);
  }
  return {
    gw,
    browser,
    async stop() {
      await browser.close();
      gw.child.kill('SIGKILL');
      await gw.exited;
    },
  };
}

/** Fills the login form of the page the browser is on and waits to be sent on to `then`. */
export async function logIn(page: Page, user: LocalUser, then: string): Promise<void> {
  await page.fill('input[name=user]', user.name);
  await page.fill('input[name=password]', user.password);
  await page.click('button[type=submit]');
  await page.waitForURL(then);
}
