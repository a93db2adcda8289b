// The big screen. Figures arrive as integer minor units in strings (int64 in proto3 JSON) and
// are formatted exactly with BigInt: never through a float. The stream is Server-Sent Events;
// EventSource reconnects by itself, and the page shows "reconnecting" meanwhile.
"use strict";

const params = new URLSearchParams(location.search);
const eventId = params.get("event") || "";
const limit = params.get("limit") || "10";

// Locales that print a currency the way its own shoppers read it.
const LOCALES = { IDR: "id-ID", USD: "en-US", SGD: "en-SG", MYR: "ms-MY", JPY: "ja-JP",
  EUR: "de-DE", THB: "th-TH", PHP: "en-PH", VND: "vi-VN", CNY: "zh-CN", KRW: "ko-KR" };

/** Exact money: `minor` (a BigInt) in `currency` with `exponent` decimals. IDR is shown in
 * whole rupiah when there is no sen (`Rp 1.234.567.890`), as people read it. */
function money(minor, currency, exponent) {
  const locale = LOCALES[currency] || "en-US";
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  const scale = 10n ** BigInt(exponent);
  const major = abs / scale;
  const fraction = abs % scale;
  let parts;
  try {
    parts = new Intl.NumberFormat(locale, { style: "currency", currency,
      minimumFractionDigits: 0, maximumFractionDigits: 0 }).formatToParts(major);
  } catch (e) {
    parts = [{ type: "integer", value: major.toString() }, { type: "literal", value: " " + currency }];
  }
  const decimal = (new Intl.NumberFormat(locale).formatToParts(1.5).find(p => p.type === "decimal") || { value: "." }).value;
  let out = "";
  let placed = false;
  for (const p of parts) {
    out += p.value;
    if (!placed && p.type === "integer" && fraction !== 0n && exponent > 0) {
      // After the last integer group (the parts list groups then the integer tail).
      const rest = parts.slice(parts.indexOf(p) + 1);
      if (!rest.some(q => q.type === "integer" || q.type === "group")) {
        out += decimal + fraction.toString().padStart(exponent, "0");
        placed = true;
      }
    }
  }
  return (negative ? "−" : "") + out.replace(/\u00a0/g, " ");
}

/** `part / whole` as a percentage with one decimal, half to even, from BigInts. */
function percent(part, whole) {
  if (whole === 0n) return "";
  let n = part * 1000n;
  let q = n / whole;
  const r = n % whole;
  const twice = (r < 0n ? -r : r) * 2n;
  const w = whole < 0n ? -whole : whole;
  if (twice > w || (twice === w && q % 2n !== 0n)) q += ((n < 0n) === (whole < 0n)) ? 1n : -1n;
  const sign = q < 0n ? "-" : "";
  const a = q < 0n ? -q : q;
  return `${sign}${a / 10n}.${a % 10n}%`;
}

/** `n / d` rounded half to even, BigInts, `d > 0`. */
function divHalfEven(n, d) {
  let q = n / d;
  const r = n % d;
  const twice = (r < 0n ? -r : r) * 2n;
  if (twice > d || (twice === d && q % 2n !== 0n)) q += n < 0n ? -1n : 1n;
  return q;
}

/** The decimal separator of `locale`. */
function decimalOf(locale) {
  return (new Intl.NumberFormat(locale).formatToParts(1.5).find(p => p.type === "decimal") || { value: "." }).value;
}

/** A non-negative BigInt with the locale's grouping (exact: Intl formats BigInt as is). */
function grouped(n, locale) {
  return new Intl.NumberFormat(locale).format(n).replace(/\u00a0/g, " ");
}

/** The locale's word for the size of a number of `digits` integer digits, and the unit it
 * stands for ("triliun" and 10^12 in id-ID; "億" and 10^8 in ja-JP), from the locale's long
 * compact notation of that power of ten (a power of ten is exact as a Number); `null` when the
 * locale has none. */
function unitWord(digits, locale) {
  try {
    const parts = new Intl.NumberFormat(locale, { notation: "compact", compactDisplay: "long",
      maximumFractionDigits: 0 }).formatToParts(10 ** (digits - 1));
    const word = parts.find(p => p.type === "compact");
    const shown = parts.filter(p => p.type === "integer").map(p => p.value).join("");
    if (!word || !/^[0-9]+$/.test(shown)) return null;
    return { word: word.value, unit: 10n ** BigInt(digits - 1) / BigInt(shown) };
  } catch (e) {
    return null;
  }
}

/** `scaled / 10^decimals` (a non-negative BigInt fraction) as people read a large number:
 * `significant` digits and the locale's word ("29,88 triliun", "512,3 miliar" with four), when
 * it is at least `from`; otherwise `null`. */
function shortNumber(scaled, decimals, locale, from, significant) {
  const whole = scaled / 10n ** BigInt(decimals);
  if (whole < from) return null;
  const size = unitWord(whole.toString().length, locale);
  if (!size) return null;
  const intDigits = (whole / size.unit).toString().length;
  const places = Math.max(0, significant - intDigits);
  const m = divHalfEven(scaled * 10n ** BigInt(places), size.unit * 10n ** BigInt(decimals));
  const p = 10n ** BigInt(places);
  const fraction = places ? decimalOf(locale) + (m % p).toString().padStart(places, "0") : "";
  return `${grouped(m / p, locale)}${fraction} ${size.word}`;
}

/** From a billion major units up, `minor` in its short form with the currency
 * ("Rp 29,88 triliun"); `null` below that (the exact figure is short enough). */
function shortMoney(minor, currency, exponent) {
  const locale = LOCALES[currency] || "en-US";
  const negative = minor < 0n;
  const n = shortNumber(negative ? -minor : minor, exponent, locale, 10n ** 9n, 4);
  if (n === null) return null;
  let parts;
  try {
    parts = new Intl.NumberFormat(locale, { style: "currency", currency,
      maximumFractionDigits: 0 }).formatToParts(0);
  } catch (e) {
    parts = [{ type: "integer", value: "0" }, { type: "literal", value: " " + currency }];
  }
  const out = parts.map(p => (p.type === "integer" ? n : p.value)).join("");
  return (negative ? "−" : "") + out.replace(/\u00a0/g, " ");
}

/** Growth of `now` over `then` as people read it: "+21,4%", "−3,0%" (one decimal, half to
 * even, the locale's separators); past ten times as a multiple ("×28,6 juta"); "new" when the
 * baseline is 0. */
function growthText(now, then, locale) {
  if (then === 0n) return now === 0n ? "" : "new";
  if (then > 0n && now >= 10n * then) {
    const tenths = divHalfEven(now * 10n, then);
    const n = shortNumber(tenths, 1, locale, 10n ** 6n, 3);
    return "×" + (n !== null ? n : `${grouped(tenths / 10n, locale)}${decimalOf(locale)}${tenths % 10n}`);
  }
  const w = then < 0n ? -then : then;
  const tenths = divHalfEven((now - then) * 1000n * (then < 0n ? -1n : 1n), w);
  const a = tenths < 0n ? -tenths : tenths;
  return `${tenths < 0n ? "−" : "+"}${grouped(a / 10n, locale)}${decimalOf(locale)}${a % 10n}%`;
}

/** Shrinks `el`'s type until its text fits its box (it starts from the style's size). */
function fit(el) {
  el.style.fontSize = "";
  for (let i = 0; i < 8 && el.scrollWidth > el.clientWidth; i++) {
    const size = parseFloat(getComputedStyle(el).fontSize);
    el.style.fontSize = Math.max(8, Math.floor(size * el.clientWidth / el.scrollWidth) - 1) + "px";
  }
}

function text(id, value) { document.getElementById(id).textContent = value; }

let last = null;          // the last message
let shown = null;         // the national figure on screen now (BigInt)
let animation = null;
let previousRanks = {};   // site -> rank in the previous snapshot
let lastMessageAt = 0;
let reconnecting = false;
let refusedNotice = null; // why the server refused the stream, while it does

/** Shows `value` as the headline: the exact figure, or from a billion major units the short
 * form people read with the exact figure smaller beneath; each fitted to its box (refitted only
 * when its length changes). */
function headline(value, currency, exponent) {
  const big = document.getElementById("national");
  const full = document.getElementById("national-full");
  const exact = money(value, currency, exponent);
  const short = shortMoney(value, currency, exponent);
  const shows = [[big, short === null ? exact : short], [full, short === null ? "" : exact]];
  for (const [el, t] of shows) {
    el.textContent = t;
    if (el.dataset.fitted !== String(t.length)) {
      fit(el);
      el.dataset.fitted = String(t.length);
    }
  }
}

/** Counts the national figure up (or down) from what is shown to `target`, exactly. */
function countTo(target, currency, exponent) {
  const el = document.getElementById("national");
  el.dataset.minor = target.toString();
  if (animation) cancelAnimationFrame(animation);
  const from = shown === null ? target : shown;
  const started = performance.now();
  const duration = 800;
  const step = (now) => {
    const t = Math.min(1, (now - started) / duration);
    const eased = BigInt(Math.round((1 - Math.pow(1 - t, 3)) * 1000));
    const value = t >= 1 ? target : from + (target - from) * eased / 1000n;
    shown = value;
    headline(value, currency, exponent);
    if (t < 1) animation = requestAnimationFrame(step);
  };
  animation = requestAnimationFrame(step);
}

function renderRanking(m) {
  // Sites held by the organizers are not ranked but are in the national figure: said, so the
  // figure above is read right.
  const held = m.held_sites || [];
  document.getElementById("held").textContent = held.length === 0 ? ""
    : `${held.length === 1 ? "1 site" : held.length + " sites"} held by the organizers: in the national figure, not ranked`;
  const list = document.getElementById("ranking");
  const entries = m.entries || [];
  const top = entries.reduce((a, e) => { const v = BigInt(e.net_reporting_minor); return v > a ? v : a; }, 0n);
  const ranks = {};
  list.replaceChildren(...entries.map(e => {
    ranks[e.site_id] = e.rank;
    const li = document.createElement("li");
    li.dataset.site = e.site_id;
    const before = previousRanks[e.site_id];
    const move = !before || !e.rank ? "" : before > e.rank ? "▲" : before < e.rank ? "▼" : "";
    const net = BigInt(e.net_reporting_minor);
    const width = top > 0n ? Number(net * 1000n / top) / 10 : 0;
    li.innerHTML = `<span class="rank"></span><span class="move"></span><span class="name"></span><span class="money"></span><span class="bar"><span></span></span>`;
    // A site without any transaction has no rank (0): listed last, without a number.
    li.querySelector(".rank").textContent = e.rank ? e.rank : "–";
    if (!e.rank) li.classList.add("unranked");
    const mv = li.querySelector(".move");
    mv.textContent = move;
    mv.className = "move " + (move === "▲" ? "up" : move === "▼" ? "down" : "");
    li.querySelector(".name").textContent = e.display_name || e.site_id;
    // An organizer is reviewing an integrity flag of this site: said beside it (its figures
    // are unchanged). A held site is not in the entries at all.
    // Inside the name's cell, first, so a long name's ellipsis never hides it.
    if (e.under_review) {
      const mark = document.createElement("span");
      mark.className = "review";
      mark.textContent = "under review";
      li.querySelector(".name").prepend(mark);
      li.classList.add("under-review");
    }
    li.querySelector(".money").textContent = e.out_of_range ? "out of range" : money(net, m.reporting_currency, m.reporting_exponent);
    li.querySelector(".bar span").style.width = Math.max(0, width) + "%";
    return li;
  }));
  previousRanks = ranks;
  [...list.children].forEach((li, i) => {
    const e = entries[i];
    if (!e.out_of_range) fitRow(li, BigInt(e.net_reporting_minor), "", m);
  });
}

/** A figure too wide for its row (`li`) is shown in its short form (the exact one in its
 * tooltip), then its type shrinks if it must. */
function fitRow(li, net, suffix, m) {
  const cell = li.querySelector(".money");
  cell.title = cell.textContent;
  cell.style.fontSize = "";
  if (li.scrollWidth > li.clientWidth) {
    const short = shortMoney(net, m.reporting_currency, m.reporting_exponent);
    if (short !== null) cell.textContent = short + suffix;
  }
  if (li.scrollWidth > li.clientWidth) {
    cell.style.fontSize = Math.max(8, Math.floor(parseFloat(getComputedStyle(cell).fontSize) * li.clientWidth / li.scrollWidth) - 1) + "px";
  }
}

function renderHourly(m) {
  const svg = document.getElementById("hourly");
  const hours = m.hourly || [];
  // The exact decimal when the hour passes int64 (its net_reporting_minor is then 0).
  const values = hours.map(h => BigInt(h.net_reporting_decimal || h.net_reporting_minor));
  const max = values.reduce((a, v) => (v > a ? v : a), 1n);
  const width = 600, height = 200, gap = 2;
  // At least a day's slots, so a young event's first hours are not one wide block.
  const w = width / Math.max(hours.length, 24);
  svg.replaceChildren(...values.map((v, i) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const h = v > 0n ? Number(v * 1000n / max) / 1000 * height : 2;
    r.setAttribute("x", (i * w).toFixed(2));
    r.setAttribute("y", (height - h).toFixed(2));
    r.setAttribute("width", Math.max(1, w - gap).toFixed(2));
    r.setAttribute("height", h.toFixed(2));
    if (v < 0n) r.setAttribute("class", "negative");
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = `${hours[i].hour_start}: ${money(v, m.reporting_currency, m.reporting_exponent)}`;
    r.appendChild(title);
    return r;
  }));
}

function renderBreakdowns(m) {
  const cat = m.categories || { entries: [], total_net_reporting_minor: "0" };
  const total = BigInt(cat.total_net_reporting_minor || "0");
  document.getElementById("categories").replaceChildren(...cat.entries.map(e => {
    const li = document.createElement("li");
    const net = BigInt(e.net_reporting_minor);
    li.innerHTML = "<span class=name></span><span class=money></span>";
    li.querySelector(".name").textContent = `${e.rank}. ${e.key || "(none)"}`;
    li.querySelector(".money").textContent = `${money(net, m.reporting_currency, m.reporting_exponent)}  ${percent(net, total)}`;
    li.dataset.net = net.toString();
    return li;
  }));
  for (const li of document.getElementById("categories").children) {
    const net = BigInt(li.dataset.net);
    fitRow(li, net, `  ${percent(net, total)}`, m);
  }
  const origin = m.origin || { entries: [], total_net_reporting_minor: "0" };
  const all = BigInt(origin.total_net_reporting_minor || "0");
  const bar = document.getElementById("origin-bar");
  const legend = [];
  bar.replaceChildren(...origin.entries.map(e => {
    const d = document.createElement("div");
    const net = BigInt(e.net_reporting_minor);
    d.className = e.key || "none";
    d.style.width = all > 0n ? Number(net * 1000n / all) / 10 + "%" : "0%";
    legend.push(`${e.key || "unspecified"} ${percent(net, all)}`);
    return d;
  }));
  text("origin-legend", legend.join(" · "));
}

function render(m) {
  last = m;
  const ev = m.event || {};
  text("event-name", ev.display_name || m.event_id);
  const state = (m.state || "").replace("EVENT_STATE_", "").toLowerCase();
  text("event-state", state === "closed" ? "final result" : state);
  document.title = `${ev.display_name || m.event_id} · Saleboard`;
  const minor = BigInt(m.national_net_reporting_decimal || m.national_net_reporting_minor);
  countTo(minor, m.reporting_currency, m.reporting_exponent);
  const growth = document.getElementById("growth");
  if (m.baseline_event_id) {
    const then = BigInt(m.baseline_net_reporting_minor);
    const g = growthText(minor, then, LOCALES[m.reporting_currency] || "en-US");
    const name = ev.baseline_display_name || m.baseline_event_id;
    const when = state === "live" || state === "scheduled" ? " at the same hour" : "";
    growth.textContent = g ? `${g} vs ${name}${when}` : `vs ${name}: no figure yet`;
    growth.className = g.startsWith("−") ? "down" : "up";
  } else {
    growth.textContent = "";
  }
  fit(growth);
  renderRanking(m);
  renderHourly(m);
  renderBreakdowns(m);
  const unconverted = m.unconverted_currencies || [];
  text("unconverted", unconverted.length ? `no exchange rate yet for ${unconverted.join(", ")} (left out)` : "");
  tick();
}

/** The clock line (time left or since the start, in the event's time zone) and the age. */
function tick() {
  const asOf = document.getElementById("as-of");
  if (refusedNotice) {
    asOf.textContent = refusedNotice;
    asOf.className = "reconnecting";
  } else if (reconnecting) {
    asOf.textContent = "reconnecting…";
    asOf.className = "reconnecting";
  } else if (last && last.stale) {
    // The leaderboard cannot read its database: these are its last figures, and it moves on
    // by itself when the database returns.
    const zone = (last.event && last.event.time_zone) || "UTC";
    let at;
    try {
      at = new Intl.DateTimeFormat(undefined, { timeZone: zone, timeStyle: "medium" }).format(new Date(last.as_of));
    } catch (e) {
      at = new Date(last.as_of).toISOString().slice(11, 19);
    }
    asOf.textContent = `figures as of ${at} — updates paused · ledger position ${last.watermark}`;
    asOf.className = "paused";
  } else if (last) {
    const age = Math.max(0, Math.round((Date.now() - Date.parse(last.as_of)) / 1000));
    asOf.textContent = `as of ${age}s ago · ledger position ${last.watermark}`;
    asOf.className = "";
  }
  if (!last || !last.event) return;
  const ev = last.event;
  const zone = ev.time_zone || "UTC";
  let fmt;
  try {
    fmt = new Intl.DateTimeFormat(undefined, { timeZone: zone, dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    fmt = new Intl.DateTimeFormat(undefined, { timeZone: "UTC", dateStyle: "medium", timeStyle: "short" });
  }
  const now = Date.now();
  const start = Date.parse(ev.starts_at), end = Date.parse(ev.ends_at);
  const span = (ms) => {
    const s = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    return (d ? `${d}d ` : "") + `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
  };
  let line;
  if (now < start) line = `starts in ${span(start - now)}`;
  else if (now < end) line = `${span(end - now)} left · started ${span(now - start)} ago`;
  else line = `ended ${fmt.format(new Date(end))}`;
  text("clock", `${line} · ${fmt.format(new Date(now))} (${zone})`);
}

let source = null; // the open stream
let retry = null;  // a pending reconnection after a refusal

function connect() {
  if (retry) { clearTimeout(retry); retry = null; }
  if (source) source.close();
  const query = new URLSearchParams({ limit });
  if (eventId) query.set("event", eventId);
  const url = `/events/leaderboard?${query}`;
  const es = new EventSource(url);
  source = es;
  es.onmessage = (e) => {
    reconnecting = false;
    refusedNotice = null;
    lastMessageAt = Date.now();
    render(JSON.parse(e.data));
  };
  es.addEventListener("failure", (e) => {
    text("as-of", `the server refused: ${e.data}`);
  });
  es.onerror = () => {
    // EventSource retries by itself (CONNECTING). A refused stream (an HTTP error, such as 429
    // when this address already has its share of screens) is CLOSED: ask once more with fetch
    // to learn why, say it, and try again when the server says to.
    reconnecting = true;
    tick();
    if (es.readyState === EventSource.CLOSED) refused(url);
  };
}

async function refused(url) {
  let wait = 1000;
  refusedNotice = null;
  try {
    const controller = new AbortController();
    const response = await fetch(url, { signal: controller.signal, cache: "no-store" });
    // A stream that was granted this time is let go: EventSource opens its own.
    if (response.status !== 429) controller.abort();
    if (response.status === 429) {
      const seconds = Number(response.headers.get("Retry-After")) || 10;
      wait = seconds * 1000;
      // The server says which limit it is ("too many screens from this address", or the
      // leaderboard's own share of screens).
      let why = "too many screens";
      try {
        why = (await response.json()).message.split(" (")[0].split(":")[0] || why;
      } catch (e) {
        // Not JSON: the status says enough.
      }
      refusedNotice = `${why}; trying again in ${seconds} s`;
      tick();
    }
  } catch (e) {
    // The server is down: EventSource's own message ("reconnecting") stays.
  }
  retry = setTimeout(connect, wait);
}

// A screen that navigates away (or is frozen in the back-forward cache) gives its stream back
// at once: each address has a limited share of screens.
window.addEventListener("pagehide", () => { if (source) source.close(); });
window.addEventListener("pageshow", (e) => { if (e.persisted) connect(); });

setInterval(tick, 1000);
connect();
