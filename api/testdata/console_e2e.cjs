// The console's end-to-end path in Debian's Chromium, driven by Playwright
// (playwright-core, found through NODE_PATH): open an experiment signed out,
// sign in through the form, save the page's DOM and a screenshot, download the
// HTML report, sign out, and check that the console sends the browser back to
// the sign-in form. Prints one JSON object for TestConsolePlaywright.
//
//   node console_e2e.cjs BASE_URL KEY OUT_DIR
const { chromium } = require('playwright-core');

const [base, key, out] = process.argv.slice(2);

(async () => {
	const browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run'],
	});
	const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 900 } });
	const page = await ctx.newPage();
	const problems = [];
	page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
	page.on('pageerror', (e) => problems.push(String(e)));

	await page.goto(base + '/experiments/checkout');
	const signInURL = page.url();
	await page.getByLabel('API key').fill(key);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.waitForURL(base + '/experiments/checkout');
	await page.screenshot({ path: out + '/experiment.png', fullPage: true });
	const dom = await page.content();
	const cookies = await ctx.cookies();

	const [download] = await Promise.all([
		page.waitForEvent('download'),
		page.getByRole('link', { name: 'Report (HTML)' }).click(),
	]);
	await download.saveAs(out + '/report.html');

	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.waitForURL(/\/login$/);
	await page.goto(base + '/');
	const afterSignOut = page.url();
	await browser.close();
	console.log(JSON.stringify({ signInURL, dom, cookies, afterSignOut, problems }));
})().catch((e) => { console.error(e); process.exit(1); });
