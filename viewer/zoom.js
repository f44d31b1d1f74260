// Fit, zoom and pan of the statechart. The chart is drawn in its own units (chart.js); the
// <svg>'s viewBox fits it to the panel, and a transform on its `g.viewport` zooms and pans on
// top of that. The transform is kept here, not in the drawing: the chart is redrawn at every
// state change of a live actor, and the user's zoom must survive that.

/** A small chart is not blown up past this scale to fill a large panel: text would be huge. */
const MAX_FIT_SCALE = 1.4;
const MIN_ZOOM = 0.2;
const MAX_ZOOM = 8;

/**
 * Makes an <svg> chart zoomable (wheel, buttons) and pannable (drag), fitted to its box.
 *
 * @example
 * const zoom = attachZoom(svg);
 * renderChart(svg, def, marks); zoom.fit('subprocess'); // after every redraw
 * zoom.reset();                                         // the whole chart again
 *
 * @param {SVGSVGElement} svg
 */
export function attachZoom(svg) {
  const z = { k: 1, x: 0, y: 0, key: '' };
  /** @type {{ x: number, y: number, k: number, tx: number, ty: number, id: number } | undefined} */
  let drag;

  const apply = () => {
    const g = svg.querySelector('g.viewport');
    if (g) g.setAttribute('transform', `translate(${round(z.x)} ${round(z.y)}) scale(${round(z.k, 1000)})`);
    svg.classList.toggle('zoomed', z.k !== 1 || z.x !== 0 || z.y !== 0);
  };

  /** A client point in the viewBox's units (what the transform is written in). */
  const toUser = (cx, cy) => {
    const m = svg.getScreenCTM();
    if (!m) return { x: 0, y: 0 };
    const p = new DOMPoint(cx, cy).matrixTransform(m.inverse());
    return { x: p.x, y: p.y };
  };

  /** Zooms by `factor` keeping the chart point under (ux, uy) where it is. */
  const zoomAt = (factor, ux, uy) => {
    const k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z.k * factor));
    z.x = ux - ((ux - z.x) * k) / z.k;
    z.y = uy - ((uy - z.y) * k) / z.k;
    z.k = k;
    apply();
  };

  /** The viewBox's centre, for the buttons' zoom. */
  const centre = () => {
    const vb = svg.viewBox.baseVal;
    return { x: vb.x + vb.width / 2, y: vb.y + vb.height / 2 };
  };

  svg.addEventListener(
    'wheel',
    (ev) => {
      if (!svg.querySelector('g.viewport')) return;
      ev.preventDefault();
      const p = toUser(ev.clientX, ev.clientY);
      // Pixels or lines: a notch of a mouse wheel is ~100 px, a touchpad sends many small ones.
      const dy = ev.deltaMode === 1 ? ev.deltaY * 33 : ev.deltaY;
      zoomAt(Math.exp(-dy * 0.0015), p.x, p.y);
    },
    { passive: false },
  );
  svg.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0 || !svg.querySelector('g.viewport')) return;
    const m = svg.getScreenCTM();
    drag = { x: ev.clientX, y: ev.clientY, k: m ? m.a : 1, tx: z.x, ty: z.y, id: ev.pointerId };
    svg.setPointerCapture?.(ev.pointerId);
    svg.classList.add('dragging');
  });
  svg.addEventListener('pointermove', (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    z.x = drag.tx + (ev.clientX - drag.x) / drag.k;
    z.y = drag.ty + (ev.clientY - drag.y) / drag.k;
    apply();
  });
  const end = (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    drag = undefined;
    svg.classList.remove('dragging');
  };
  svg.addEventListener('pointerup', end);
  svg.addEventListener('pointercancel', end);
  // Refit when the panel changes size (window resize, the details box opening).
  if (typeof ResizeObserver === 'function') new ResizeObserver(() => fitBox()).observe(svg);

  /** The viewBox: the chart, widened to the panel's shape and to at most MAX_FIT_SCALE. */
  const fitBox = () => {
    const w = Number(svg.dataset.chartWidth);
    const h = Number(svg.dataset.chartHeight);
    if (!w || !h) return;
    const cw = svg.clientWidth || w;
    const ch = svg.clientHeight || h;
    const scale = Math.min(cw / w, ch / h, MAX_FIT_SCALE);
    const vw = cw / scale;
    const vh = ch / scale;
    svg.setAttribute('viewBox', `${round(-(vw - w) / 2)} ${round(-(vh - h) / 2)} ${round(vw)} ${round(vh)}`);
  };

  return {
    /**
     * After a redraw: fits the new drawing and puts the zoom back, unless the chart is of
     * another machine (then it starts whole).
     *
     * @param {string} key the machine drawn
     */
    fit(key) {
      if (key !== z.key) Object.assign(z, { k: 1, x: 0, y: 0, key });
      fitBox();
      apply();
    },
    /** The whole chart, fitted, as at first. */
    reset() {
      Object.assign(z, { k: 1, x: 0, y: 0 });
      apply();
    },
    /** @param {number} factor */
    zoomBy(factor) {
      const c = centre();
      zoomAt(factor, c.x, c.y);
    },
    /** For tests and the console. */
    get state() {
      return { k: z.k, x: z.x, y: z.y };
    },
  };
}

/** @param {number} n */
function round(n, f = 10) {
  return Math.round(n * f) / f;
}
