// The console end to end against a running `lift serve` (TestConsoleServe),
// in Debian's Chromium driven by Playwright (playwright-core, on NODE_PATH):
// sign in through the form, open every section and the experiment, download
// its HTML report and CSV, walk each page with the Tab key (what gets focus,
// and whether the focus is visible), collect every text colour with the
// background it is drawn on, take screenshots (desktop and a phone's
// viewport), sign out. Prints one JSON object.
//
//   node console_serve_e2e.cjs BASE_URL KEY OUT_DIR EXPERIMENT PATHS
//
// PATHS: the console pages to visit, separated by commas.
const { chromium } = require('playwright-core');

const [base, key, out, exp, pathList] = process.argv.slice(2);
const paths = pathList.split(',');

// In the page: every focusable control, and the text colours in use.
function survey() {
	const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
	const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('href') ? '[href=' + el.getAttribute('href') + ']' : '') + (el.name ? '[name=' + el.name + ']' : '') + (el.value && el.tagName === 'BUTTON' ? '' : '') + '|' + (el.textContent || '').trim().slice(0, 30);
	const focusable = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
		.filter((el) => visible(el) && !el.disabled && el.tabIndex >= 0 && !el.closest('svg')).map(describe);
	const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
	const bgOf = (el) => {
		for (let e = el; e; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c && c.a > 0) return c;
		}
		return { r: 255, g: 255, b: 255, a: 1 };
	};
	const pairs = {};
	for (const el of document.querySelectorAll('body *')) {
		if (el.closest('svg') || !visible(el)) continue;
		const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
		if (!own) continue;
		const s = getComputedStyle(el);
		const fg = parse(s.color), bg = bgOf(el);
		const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
		const k = [fg.r, fg.g, fg.b, bg.r, bg.g, bg.b, size >= 24 || (bold && size >= 18.66)].join(',');
		if (!pairs[k]) pairs[k] = { fg: [fg.r, fg.g, fg.b], bg: [bg.r, bg.g, bg.b], large: size >= 24 || (bold && size >= 18.66), fgAlpha: fg.a, sample: el.tagName.toLowerCase() + '.' + el.className + ': ' + el.textContent.trim().slice(0, 40) };
	}
	return { focusable, pairs: Object.values(pairs), scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth };
}

// tabWalk presses Tab until the focus comes back to where it started (or
// 300 presses), recording each focused element and whether its focus is
// visible (an outline or box shadow).
async function tabWalk(page) {
	const seen = [];
	let outside = 0;
	await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
	for (let i = 0; i < 300; i++) {
		await page.keyboard.press('Tab');
		const f = await page.evaluate(() => {
			const el = document.activeElement;
			if (!el || el === document.body) return null;
			const s = getComputedStyle(el);
			const d = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('href') ? '[href=' + el.getAttribute('href') + ']' : '') + (el.name ? '[name=' + el.name + ']' : '') + '|' + (el.textContent || '').trim().slice(0, 30);
			const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
			return { d, visible: outline || (s.boxShadow && s.boxShadow !== 'none'), focusVisible: el.matches(':focus-visible') };
		});
		if (!f) { // past the last control the focus leaves the page, then comes back to the first
			if (++outside > 3) break;
			continue;
		}
		if (seen.length > 0 && f.d === seen[0].d) break;
		seen.push(f);
	}
	return seen;
}

// settle waits, as a reader does, while the page says its numbers are being
// computed (the first look at a view since lift serve started): such a page
// reloads itself every second (a meta refresh) until they are shown; here
// it is reloaded after half a second, for a minute at most. It returns the
// last load's response (resp, the first's, when there was no reload).
async function settle(page, resp) {
	for (let i = 0; i < 120 && await page.locator('meta[http-equiv="refresh"]').count() > 0; i++) {
		await page.waitForTimeout(500);
		resp = await page.reload();
	}
	return resp;
}

(async () => {
	const browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run'],
	});
	const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
	const page = await ctx.newPage();
	const problems = [];
	page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
	page.on('pageerror', (e) => problems.push(String(e)));

	await page.goto(base + '/');
	const signInURL = page.url();
	const login = { survey: await page.evaluate(survey), tabs: await tabWalk(page) };
	await page.screenshot({ path: out + '/login.png' });
	await page.getByLabel('API key').fill(key);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.waitForURL(base + '/');

	const pages = { '/login': login };
	for (const p of paths) {
		const resp = await settle(page, await page.goto(base + p));
		const name = p === '/' ? 'experiments' : p.replace(/^\//, '').replace(/\//g, '-');
		await page.screenshot({ path: out + '/' + name + '.png', fullPage: true });
		pages[p] = { status: resp.status(), dom: await page.content(), survey: await page.evaluate(survey), tabs: await tabWalk(page) };
	}

	// The experiment, opened from the list by its link.
	await page.goto(base + '/');
	await page.locator('#experiments a[href="/experiments/' + exp + '"]').click();
	await page.waitForURL(base + '/experiments/' + exp);
	await settle(page);
	const experimentDom = await page.content();
	await page.screenshot({ path: out + '/experiment.png', fullPage: true });
	const downloads = {};
	for (const [label, file] of [['Report (HTML)', 'report.html'], ['Results (CSV)', 'results.csv']]) {
		const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: label }).click()]);
		await download.saveAs(out + '/' + file);
		downloads[file] = download.suggestedFilename();
	}

	// A phone: the summaries and the experiments list in a 390-pixel viewport.
	const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
	await phone.addCookies((await ctx.cookies()).filter((c) => c.name === 'lift_session'));
	const pp = await phone.newPage();
	const narrow = {};
	for (const p of ['/summaries', '/', '/experiments/' + exp]) {
		await pp.goto(base + p);
		await settle(pp);
		const name = p === '/' ? 'experiments' : p.replace(/^\//, '').replace(/\//g, '-');
		await pp.screenshot({ path: out + '/phone-' + name + '.png', fullPage: true });
		narrow[p] = await pp.evaluate(survey);
		narrow[p].dom = await pp.content();
	}
	await phone.close();

	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.waitForURL(/\/login$/);
	await page.goto(base + '/');
	const afterSignOut = page.url();
	const cookies = await ctx.cookies();
	await browser.close();
	console.log(JSON.stringify({ signInURL, pages, experimentDom, downloads, narrow, afterSignOut, cookies, problems }));
})().catch((e) => { console.error(e); process.exit(1); });
