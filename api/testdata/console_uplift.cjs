// The console's uplift form in Debian's Chromium, driven by Playwright
// (playwright-core, found through NODE_PATH): sign in through the form, fill
// the analyses page's uplift form by its labels, run it, read the result and
// the charts shown, then run it again with an attribute that no unit has and
// read the message next to the features field. Prints one JSON object for
// TestConsoleUpliftPlaywright.
//
//   node console_uplift.cjs BASE_URL KEY OUT_DIR
const { chromium } = require('playwright-core');

const [base, key, out] = process.argv.slice(2);

(async () => {
	const browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run'],
	});
	const ctx = await browser.newContext({ viewport: { width: 1000, height: 900 } });
	const page = await ctx.newPage();
	const problems = [];
	page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
	page.on('pageerror', (e) => problems.push(String(e)));

	await page.goto(base + '/analyses');
	await page.getByLabel('API key').fill(key);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.waitForURL(base + '/analyses');

	const form = page.locator('#uplift-form');
	const fill = async (features) => {
		await form.getByLabel('Experiment').selectOption('promo');
		await form.getByLabel('Outcome metric').selectOption('revenue');
		await form.getByLabel('Features (unit attributes, separated by commas)').fill(features);
		await form.getByLabel('Meta-learner').selectOption('t');
		await form.getByLabel('Base learner').selectOption('ridge');
		await form.getByLabel('Bootstrap replicates (0: no intervals)').fill('50');
		await form.getByLabel('Seed (default 1)').fill('7');
		await form.getByRole('button', { name: 'Run uplift' }).click();
		await page.waitForLoadState('load');
	};
	await fill('age, segment');
	await page.locator('#uplift-result').waitFor();
	const summary = await page.locator('#uplift-summary').innerText();
	const heading = await page.locator('#uplift-r').innerText();
	const charts = await page.locator('figure.chart').evaluateAll((fs) =>
		fs.map((f) => ({ name: f.dataset.chart, svg: !!f.querySelector('svg'), width: f.querySelector('svg') ? f.querySelector('svg').getBoundingClientRect().width : 0 })));
	await page.screenshot({ path: out + '/uplift.png', fullPage: true });

	// The refused form is answered with the API's status (400), which
	// Chromium logs as a failed load: expected, so not a problem.
	const before = problems.length;
	await fill('age, height');
	problems.splice(before, problems.length - before, ...problems.slice(before).filter((p) => !/status of 400/.test(p)));
	const featuresError = await page.locator('#features-error').innerText();
	const invalid = await page.locator('#uplift-form #features').getAttribute('aria-invalid');
	const kept = await page.locator('#uplift-form #features').inputValue();
	const resultAfterError = await page.locator('#uplift-result').count();
	await page.screenshot({ path: out + '/uplift-error.png', fullPage: true });
	await browser.close();
	console.log(JSON.stringify({ summary, heading, charts, featuresError, invalid, kept, resultAfterError, problems }));
})().catch((e) => { console.error(e); process.exit(1); });
