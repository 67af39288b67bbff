// Small DOM helpers. Everything is built with createElement (never HTML strings), so the
// strict CSP holds: no inline styles, no inline handlers.

type AttrValue = string | number | boolean | null | undefined;
export type Attrs = Record<string, AttrValue>;
export type Child = Node | string | null | undefined | false;

/**
 * `h("button", { class: "btn", testid: "x", "aria-label": "Close" }, "Close")`.
 * `testid` becomes data-testid; `true` sets an empty attribute; false/null/undefined skip it.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "style") throw new Error("inline styles break the CSP; use a class");
    const name = key === "testid" ? "data-testid" : key;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** A text node to keep and update with `setText`, so an update is one characterData write. */
export function text(value = ""): Text {
  return document.createTextNode(value);
}

/** Writes only when the value differs; returns whether it wrote. */
export function setText(node: Text, value: string): boolean {
  if (node.data === value) return false;
  node.data = value;
  return true;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const el = root instanceof Document ? root.getElementById(id) : root.querySelector(`#${id}`);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

export function byTestId<T extends HTMLElement = HTMLElement>(root: ParentNode, testid: string): T {
  const el = root.querySelector(`[data-testid="${testid}"]`);
  if (!el) throw new Error(`missing [data-testid=${testid}]`);
  return el as T;
}

const SVG = "http://www.w3.org/2000/svg";

// 24x24 outline icons (stroke = currentColor), drawn for this app.
const ICONS = {
  pause: ["M9 5v14", "M15 5v14"],
  play: ["M8 5.5v13l10.5-6.5z"],
  retry: ["M20 12a8 8 0 1 1-2.4-5.7", "M20 4v5h-5"],
  cancel: ["M7 7l10 10", "M17 7L7 17"],
  remove: ["M4.5 7h15", "M9.5 7V4.5h5V7", "M6.5 7l1 12.5h9l1-12.5"],
  copy: ["M9 9h10.5v10.5H9z", "M15 9V4.5H4.5V15H9"],
  open: ["M13.5 4.5h6v6", "M19.5 4.5l-8.5 8.5", "M18 14v5.5H4.5V6H10"],
  preview: ["M4 5.5h16v13H4z", "M10.5 9.5v5l4-2.5z"],
  close: ["M6.5 6.5l11 11", "M17.5 6.5l-11 11"],
  plus: ["M12 5v14", "M5 12h14"],
  edit: ["M5 19h3.5L19 8.5 15.5 5 5 15.5z", "M13.5 7l3.5 3.5"],
  star: ["M12 4.5l2.3 4.7 5.2.8-3.8 3.7.9 5.2-4.6-2.4-4.6 2.4.9-5.2-3.8-3.7 5.2-.8z"],
  test: ["M5 12.5l4.5 4.5L19 7.5"],
  folder: ["M3.5 6.5h6l2 2h9v10h-17z"],
  settings: ["M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z", "M12 3.5v2.5M12 18v2.5M3.5 12H6M18 12h2.5M6 6l1.8 1.8M16.2 16.2L18 18M6 18l1.8-1.8M16.2 7.8L18 6"],
} as const;

export type IconName = keyof typeof ICONS;

export function icon(name: IconName): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of ICONS[name]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** A button with an icon and a visible label, or an icon-only button when `iconOnly`. */
export function button(
  opts: { label: string; testid?: string; icon?: IconName; iconOnly?: boolean; className?: string; title?: string },
  attrs: Attrs = {},
): HTMLButtonElement {
  const cls = ["btn", opts.iconOnly ? "icon-btn" : "", opts.className ?? ""].filter(Boolean).join(" ");
  const btn = h("button", {
    type: "button",
    class: cls,
    testid: opts.testid,
    "aria-label": opts.iconOnly ? opts.label : undefined,
    title: opts.title ?? opts.label,
    ...attrs,
  });
  if (opts.icon) btn.append(icon(opts.icon));
  if (!opts.iconOnly) btn.append(h("span", { class: "btn-label" }, opts.label));
  return btn;
}
