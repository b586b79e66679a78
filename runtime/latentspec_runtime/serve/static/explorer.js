// The latent explorer: every model call goes through the server's entry endpoints
// (POST /v1/{bundle}/{entry}); this file only composes codes and draws arrays.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const MAX_UNITS = 64;
  const state = {
    token: sessionStorage.getItem("latentspec-token") || "",
    info: null, // GET /v1/{bundle}
    dec: null, // the decode entry, its latent input and image output
    latent: null,
    image: null,
    dim: 0,
    z: [], // the unit sliders' values
    groups: [], // [{name, units, value}]
    directions: [], // [{name, vector, value}]
    current: null, // {values: Float32Array in [0, 1], image: [C, H, W]} of the decoded code
    slots: { a: null, b: null }, // codes for the interpolation
    paint: null, // {values, image, mask} of the inpainting canvas
  };

  // -- calls -------------------------------------------------------------------------------

  let busy = 0;
  function setBusy(delta) {
    busy += delta;
    document.body.dataset.busy = String(busy);
  }

  function say(text, error = false) {
    const el = $("#status");
    el.textContent = text;
    el.classList.toggle("error", error);
  }

  async function api(path, { body = null, accept = "application/json", method = null } = {}) {
    const headers = { Accept: accept };
    if (body !== null) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    setBusy(1);
    try {
      const response = await fetch(path, {
        method: method || (body === null ? "GET" : "POST"),
        headers,
        body: body === null ? undefined : JSON.stringify(body),
      });
      if (response.status === 401) {
        $("#token-box").hidden = false;
        throw new Error("this server needs a token: enter it above");
      }
      if (!response.ok) {
        let message = `${response.status} ${response.statusText}`;
        try {
          message = (await response.json()).error || message;
        } catch (_) {
          // not JSON: keep the status line
        }
        throw new Error(message);
      }
      return accept === "image/png" ? await response.blob() : await response.json();
    } finally {
      setBusy(-1);
    }
  }

  const entryPath = (e) => e.path;

  function entry(role) {
    const all = Object.values(state.info.entries);
    return all.find((e) => e.task === role) || state.info.entries[role] || null;
  }

  // -- arrays and images -------------------------------------------------------------------

  const itemShape = (t) => (t.shape[0] === "batch" ? t.shape.slice(1) : t.shape);
  const product = (dims) => dims.reduce((a, b) => a * b, 1);

  function nest(values, dims) {
    if (dims.length <= 1) return Array.from(values);
    const step = product(dims.slice(1));
    const out = [];
    for (let i = 0; i < dims[0]; i++) out.push(nest(values.slice(i * step, (i + 1) * step), dims.slice(1)));
    return out;
  }

  // Values of tensor t (any nesting) as numbers in [0, 1] for display.
  function normalized(array, t) {
    const values = Float32Array.from(array.flat(Infinity));
    let lo, hi;
    if (t.range) [lo, hi] = t.range;
    else {
      lo = Math.min(...values);
      hi = Math.max(...values);
    }
    const scale = hi > lo ? 1 / (hi - lo) : 0;
    return values.map((v) => Math.min(1, Math.max(0, (v - lo) * scale)));
  }

  // Draw (C, H, W) values in [0, 1] into a canvas; ``mask`` (H*W, 0 = unknown) tints red.
  function draw(canvas, values, image, mask = null) {
    const [c, h, w] = image;
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < 3; k++) img.data[4 * p + k] = 255 * values[(c >= 3 ? k : 0) * h * w + p];
      img.data[4 * p + 3] = c === 4 ? 255 * values[3 * h * w + p] : 255;
      if (mask && mask[p] === 0) {
        img.data[4 * p] = 0.45 * img.data[4 * p] + 140;
        img.data[4 * p + 1] *= 0.45;
        img.data[4 * p + 2] *= 0.45;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  // An image file or data URL resized to (C, H, W): a PNG data URL and values in [0, 1].
  function loadImage(src, image) {
    return new Promise((resolve, reject) => {
      const el = new Image();
      el.onload = () => {
        const [c, h, w] = image;
        const canvas = document.createElement("canvas");
        canvas.width = w;
        canvas.height = h;
        const ctx = canvas.getContext("2d");
        ctx.drawImage(el, 0, 0, w, h);
        const data = ctx.getImageData(0, 0, w, h).data;
        const values = new Float32Array(c * h * w);
        for (let p = 0; p < h * w; p++) {
          const [r, g, b, a] = [data[4 * p], data[4 * p + 1], data[4 * p + 2], data[4 * p + 3]];
          if (c === 1) values[p] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
          else {
            values[p] = r / 255;
            values[h * w + p] = g / 255;
            values[2 * h * w + p] = b / 255;
            if (c === 4) values[3 * h * w + p] = a / 255;
          }
        }
        resolve({ url: canvas.toDataURL("image/png"), values });
      };
      el.onerror = () => reject(new Error("cannot read that file as an image"));
      el.src = src;
    });
  }

  const readFile = (file) =>
    new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error("cannot read the file"));
      reader.readAsDataURL(file);
    });

  // -- the code and its sliders ------------------------------------------------------------

  function sliderRange() {
    const about = (state.info.latents || {})[state.latent.latent] || {};
    if (about.project === "unit_l2") return 1;
    if (about.project === "l2_ball") return about.radius || 1;
    return 3;
  }

  function slider(parent, label, value, range, onInput, attrs = {}) {
    const row = document.createElement("label");
    row.className = "slider";
    const name = document.createElement("span");
    name.textContent = label;
    name.title = label;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -range, max: range, step: range / 100, value });
    for (const [k, v] of Object.entries(attrs)) input.setAttribute(k, v);
    const out = document.createElement("output");
    out.textContent = Number(value).toFixed(2);
    input.addEventListener("input", () => {
      out.textContent = Number(input.value).toFixed(2);
      onInput(Number(input.value));
    });
    row.append(name, input, out);
    parent.append(row);
    return input;
  }

  function parseGroups(about) {
    const raw = about && (about.groups || about.factors);
    if (!raw) return [];
    const units = (spec) => {
      if (typeof spec === "number") return [spec];
      if (Array.isArray(spec)) return spec.filter((u) => Number.isInteger(u));
      if (spec && Array.isArray(spec.units)) return spec.units;
      if (spec && Number.isInteger(spec.start)) {
        const stop = spec.stop ?? spec.end ?? spec.start + (spec.size || 1);
        return Array.from({ length: stop - spec.start }, (_, i) => spec.start + i);
      }
      return [];
    };
    const list = Array.isArray(raw)
      ? raw.map((g, i) => [g.name || g.factor || `group ${i}`, g])
      : Object.entries(raw);
    return list
      .map(([name, spec]) => ({ name, units: units(spec).filter((u) => u >= 0 && u < state.dim), value: 0 }))
      .filter((g) => g.units.length);
  }

  function buildSliders() {
    const range = sliderRange();
    const units = $("#units");
    units.replaceChildren();
    const shown = Math.min(state.dim, MAX_UNITS);
    $("#units-title").textContent =
      shown < state.dim ? `Units (first ${shown} of ${state.dim})` : `Units of ${state.latent.latent || state.latent.name}`;
    for (let i = 0; i < shown; i++) {
      slider(units, `z${i}`, state.z[i], range, (v) => {
        state.z[i] = v;
        decodeSoon();
      }, { class: "unit", "data-unit": i });
    }
    const about = (state.info.latents || {})[state.latent.latent] || {};
    state.groups = parseGroups(about);
    $("#groups-box").hidden = !state.groups.length;
    $("#groups").replaceChildren();
    for (const g of state.groups) {
      slider($("#groups"), g.name, 0, 3, (v) => {
        g.value = v;
        decodeSoon();
      }, { class: "group", "data-group": g.name });
    }
    state.directions = Object.entries(state.info.directions || {})
      .filter(([, d]) => (!d.latent || d.latent === state.latent.latent) && d.vector.length === state.dim)
      .map(([name, d]) => ({ name, vector: d.vector, value: 0 }));
    $("#directions-box").hidden = !state.directions.length;
    $("#directions").replaceChildren();
    for (const d of state.directions) {
      slider($("#directions"), d.name, 0, 3, (v) => {
        d.value = v;
        decodeSoon();
      }, { class: "direction", "data-direction": d.name });
    }
  }

  function setCode(z) {
    state.z = Array.from(z);
    for (const g of state.groups) g.value = 0;
    for (const d of state.directions) d.value = 0;
    buildSliders();
    decodeSoon();
  }

  // The code the sliders describe: units, plus each group's offset, plus each direction.
  function code() {
    const z = state.z.slice();
    for (const g of state.groups) {
      const step = g.value / Math.sqrt(g.units.length);
      for (const u of g.units) z[u] += step;
    }
    for (const d of state.directions) for (let i = 0; i < z.length; i++) z[i] += d.value * d.vector[i];
    return z;
  }

  // mulberry32 + Box-Muller: a seeded N(0, 1) draw in the page.
  function normals(seed, n) {
    let a = seed >>> 0;
    const uniform = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const out = [];
    while (out.length < n) {
      const u = Math.max(uniform(), 1e-12);
      const v = uniform();
      const r = Math.sqrt(-2 * Math.log(u));
      out.push(r * Math.cos(2 * Math.PI * v), r * Math.sin(2 * Math.PI * v));
    }
    return out.slice(0, n);
  }

  function samplePrior(seed) {
    let z = normals(seed, state.dim);
    const about = (state.info.latents || {})[state.latent.latent] || {};
    const norm = Math.sqrt(z.reduce((s, v) => s + v * v, 0)) || 1;
    if (about.project === "unit_l2") z = z.map((v) => v / norm);
    if (about.project === "l2_ball") z = z.map((v) => v * Math.min(1, (about.radius || 1) / norm));
    return z;
  }

  let decoding = false;
  let again = false;
  async function decodeSoon() {
    again = true;
    if (decoding) return;
    decoding = true;
    try {
      while (again) {
        again = false;
        const z = nest(code(), itemShape(state.latent));
        try {
          const out = await api(entryPath(state.dec), { body: { inputs: { [state.latent.name]: z } } });
          const values = normalized(out.outputs[state.image.name], state.image);
          state.current = { values, image: state.image.image };
          const canvas = $("#decoded");
          draw(canvas, values, state.image.image);
          canvas.dataset.version = String(Number(canvas.dataset.version) + 1);
          say("");
        } catch (err) {
          say(err.message, true);
        }
      }
    } finally {
      decoding = false;
    }
  }

  // -- interpolation -----------------------------------------------------------------------

  // The code of an uploaded image: the encode entry's code, else the invert entry's latent.
  async function codeOf(src) {
    const enc = entry("encode");
    if (enc && enc.code) {
      const x = enc.inputs.find((t) => t.image);
      const { url, values } = await loadImage(src, x.image);
      const out = await api(entryPath(enc), { body: { inputs: { [x.name]: url } } });
      return { z: out.outputs[enc.code].flat(Infinity), values, image: x.image };
    }
    const inv = entry("invert");
    const lat = inv && inv.outputs.find((t) => t.meaning === "latent");
    const x = inv && inv.inputs.find((t) => t.image);
    if (!lat || !x) throw new Error("this bundle has no encode or invert entry to find the code of an image");
    const { url, values } = await loadImage(src, x.image);
    const out = await api(entryPath(inv), { body: { inputs: { [x.name]: url } } });
    return { z: out.outputs[lat.name].flat(Infinity), values, image: x.image };
  }

  function fill(slotName, z, values, image) {
    state.slots[slotName] = z;
    draw(document.querySelector(`#slot-${slotName} canvas`), values, image);
    document.querySelector(`#slot-${slotName}`).dataset.filled = "1";
    $("#interpolate").disabled = !(state.slots.a && state.slots.b);
  }

  async function interpolate() {
    const steps = Math.max(2, Math.min(32, Number($("#steps").value) || 8));
    const { a, b } = state.slots;
    const rows = [];
    for (let s = 0; s < steps; s++) {
      const t = s / (steps - 1);
      rows.push(nest(a.map((v, i) => (1 - t) * v + t * b[i]), itemShape(state.latent)));
    }
    try {
      const png = await api(`${entryPath(state.dec)}?rows=1`, {
        body: { inputs: { [state.latent.name]: rows } },
        accept: "image/png",
      });
      const img = $("#strip");
      img.src = URL.createObjectURL(png);
      img.hidden = false;
      img.dataset.steps = String(steps);
      say("");
    } catch (err) {
      say(err.message, true);
    }
  }

  // -- inpainting --------------------------------------------------------------------------

  function setPaint(values, image) {
    state.paint = { values: Float32Array.from(values), image, mask: new Float32Array(image[1] * image[2]).fill(1) };
    draw($("#inpaint-canvas"), state.paint.values, image, state.paint.mask);
    $("#inpaint").disabled = false;
  }

  function brush(event) {
    const p = state.paint;
    if (!p || !(event.buttons & 1)) return;
    const canvas = $("#inpaint-canvas");
    const rect = canvas.getBoundingClientRect();
    const [, h, w] = p.image;
    const cx = ((event.clientX - rect.left) / rect.width) * w;
    const cy = ((event.clientY - rect.top) / rect.height) * h;
    const r = Number($("#brush").value) / 2;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) p.mask[y * w + x] = 0;
    draw(canvas, p.values, p.image, p.mask);
  }

  async function inpaint() {
    const e = entry("inpaint");
    const p = state.paint;
    const x = e.inputs.find((t) => t.meaning !== "mask" && t.meaning !== "noise" && t.meaning !== "iterations");
    const m = e.inputs.find((t) => t.meaning === "mask");
    const [lo, hi] = x.range || [0, 1];
    const xv = p.values.map((v) => lo + (hi - lo) * v);
    const [c, h, w] = p.image;
    let mv = p.mask;
    if (product(itemShape(m)) === c * h * w && c > 1) {
      mv = new Float32Array(c * h * w);
      for (let k = 0; k < c; k++) mv.set(p.mask, k * h * w);
    }
    try {
      const out = await api(entryPath(e), {
        body: { inputs: { [x.name]: nest(xv, itemShape(x)), [m.name]: nest(mv, itemShape(m)) } },
      });
      const t = e.outputs.find((o) => o.image && o.meaning !== "latent" && o.meaning !== "mask");
      draw($("#inpaint-result"), normalized(out.outputs[t.name], t), t.image);
      $("#inpaint-result").dataset.done = String(Number($("#inpaint-result").dataset.done || 0) + 1);
      say("");
    } catch (err) {
      say(err.message, true);
    }
  }

  // -- the bundle panel --------------------------------------------------------------------

  const cell = (row, text, cls) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
    return td;
  };
  const fmt = (v) => {
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
    return typeof v === "string" ? v : JSON.stringify(v);
  };

  function showAbout() {
    const info = state.info;
    $("#about-head").textContent =
      `${info.name} · bundle format ${info.format_version}` +
      (info.latentspec_version ? ` · latentspec ${info.latentspec_version}` : "") +
      (info.spec_sha256 ? ` · spec ${info.spec_sha256.slice(0, 12)}` : "") +
      ` · ${(info.providers || []).join(", ")}`;
    const sig = (ts) => ts.map((t) => `${t.name} [${t.shape.join(", ")}]`).join(", ");
    const entries = $("#entries");
    entries.replaceChildren();
    for (const e of Object.values(info.entries)) {
      const row = entries.insertRow();
      cell(row, e.name).style.fontWeight = "600";
      cell(row, e.task === e.name ? e.kind : `${e.task}, ${e.kind}`);
      cell(row, `${sig(e.inputs)} → ${sig(e.outputs)}`);
    }
    const claims = info.claims;
    const claimList = Array.isArray(claims)
      ? claims.map((c, i) => [c.name || c.id || `claim ${i + 1}`, c])
      : Object.entries(claims || {});
    $("#claims-box").hidden = !claimList.length;
    const ct = $("#claims");
    ct.replaceChildren();
    for (const [name, c] of claimList) {
      const row = ct.insertRow();
      cell(row, name).style.fontWeight = "600";
      if (c && typeof c === "object") {
        const rest = Object.entries(c).filter(([k]) => !["name", "id", "holds", "passed"].includes(k));
        cell(row, rest.map(([k, v]) => `${k}: ${fmt(v)}`).join("; "));
        const holds = c.holds ?? c.passed;
        if (holds !== undefined) cell(row, holds ? "holds" : "fails", holds ? "holds" : "fails");
      } else cell(row, fmt(c));
    }
    const metricRows = [];
    const walk = (prefix, v) => {
      if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
      else metricRows.push([prefix, v]);
    };
    walk("", info.metrics || {});
    $("#metrics-box").hidden = !metricRows.length;
    const mt = $("#metrics");
    mt.replaceChildren();
    for (const [k, v] of metricRows) {
      const row = mt.insertRow();
      cell(row, k);
      cell(row, fmt(v), "num");
    }
  }

  // -- loading -----------------------------------------------------------------------------

  async function loadBundle(name) {
    say(`loading ${name}…`);
    state.info = await api(`/v1/${encodeURIComponent(name)}`);
    showAbout();
    state.dec = entry("decode");
    const hasDecode = Boolean(state.dec);
    for (const id of ["#latent", "#interp"]) $(id).hidden = !hasDecode;
    $("#inpaint-panel").hidden = !entry("inpaint");
    $("#sample-grid").hidden = !entry("sample");
    $("#grid-figure").hidden = true;
    state.slots = { a: null, b: null };
    for (const slot of document.querySelectorAll(".slot")) delete slot.dataset.filled;
    for (const canvas of document.querySelectorAll(".slot canvas, #inpaint-canvas, #inpaint-result")) {
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    }
    $("#interpolate").disabled = true;
    $("#strip").hidden = true;
    state.paint = null;
    $("#inpaint").disabled = true;
    if (!hasDecode) {
      say(`${name} has no decode entry: nothing to explore by code`);
      return;
    }
    state.latent = state.dec.inputs.find((t) => t.meaning === "latent") || state.dec.inputs[0];
    state.image = state.dec.outputs.find((t) => t.image && t.meaning !== "latent") || state.dec.outputs[0];
    state.dim = product(itemShape(state.latent));
    const canCode = Boolean((entry("encode") && entry("encode").code) || entry("invert"));
    for (const input of document.querySelectorAll(".slot input[type=file]")) input.disabled = !canCode;
    setCode(samplePrior(Number($("#seed").value) || 0));
    say("");
  }

  async function loadAll() {
    try {
      const index = await api("/v1");
      const select = $("#bundle");
      select.replaceChildren(...index.bundles.map((b) => new Option(b.name, b.name)));
      const wanted = new URLSearchParams(location.search).get("bundle");
      if (wanted && index.bundles.some((b) => b.name === wanted)) select.value = wanted;
      if (select.value) await loadBundle(select.value);
    } catch (err) {
      say(err.message, true);
    }
  }

  // -- wiring ------------------------------------------------------------------------------

  $("#bundle").addEventListener("change", (e) => loadBundle(e.target.value).catch((err) => say(err.message, true)));
  $("#token-save").addEventListener("click", () => {
    state.token = $("#token").value.trim();
    sessionStorage.setItem("latentspec-token", state.token);
    $("#token-box").hidden = true;
    loadAll();
  });
  $("#sample").addEventListener("click", () => setCode(samplePrior(Number($("#seed").value) || 0)));
  $("#zero").addEventListener("click", () => setCode(new Array(state.dim).fill(0)));
  $("#sample-grid").addEventListener("click", async () => {
    const seed = Number($("#seed").value) || 0;
    try {
      const png = await api(`${entryPath(entry("sample"))}?n=16&seed=${seed}`, { method: "POST", accept: "image/png" });
      $("#grid").src = URL.createObjectURL(png);
      $("#grid-figure").hidden = false;
    } catch (err) {
      say(err.message, true);
    }
  });
  for (const name of ["a", "b"]) {
    const slot = $(`#slot-${name}`);
    slot.querySelector(".use-current").addEventListener("click", () => {
      if (state.current) fill(name, code(), state.current.values, state.current.image);
    });
    slot.querySelector("input[type=file]").addEventListener("change", async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      try {
        const { z, values, image } = await codeOf(await readFile(file));
        fill(name, z, values, image);
      } catch (err) {
        say(err.message, true);
      }
    });
  }
  $("#interpolate").addEventListener("click", interpolate);
  $("#inpaint-current").addEventListener("click", () => {
    if (state.current) setPaint(state.current.values, state.current.image);
  });
  $("#inpaint-upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    const x = entry("inpaint").inputs.find((t) => t.image && t.meaning !== "mask");
    if (!file || !x) return;
    try {
      const { values } = await loadImage(await readFile(file), x.image);
      setPaint(values, x.image);
    } catch (err) {
      say(err.message, true);
    }
  });
  $("#clear-mask").addEventListener("click", () => {
    if (!state.paint) return;
    state.paint.mask.fill(1);
    draw($("#inpaint-canvas"), state.paint.values, state.paint.image, state.paint.mask);
  });
  const paintCanvas = $("#inpaint-canvas");
  paintCanvas.addEventListener("pointerdown", (e) => {
    paintCanvas.setPointerCapture(e.pointerId);
    brush(e);
  });
  paintCanvas.addEventListener("pointermove", brush);
  $("#inpaint").addEventListener("click", inpaint);

  loadAll();
})();
