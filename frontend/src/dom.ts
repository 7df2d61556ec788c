/** Tiny DOM helpers. Updates go through `setText`/`setAttr`, which skip writes that change nothing. */

/** The element with this id (of this type); throws at start-up if index.html and the script disagree. */
export function byId<T extends HTMLElement = HTMLElement>(id: string, type?: new () => T): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  if (type && !(el instanceof type)) throw new Error(`#${id} is a <${el.tagName.toLowerCase()}>`);
  return el as T;
}

/** Creates an element with a class name and optional attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  el.append(...children);
  return el;
}

/** Sets text content only when it differs, so ten updates a second cost nothing when idle. */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Sets (or with `undefined` removes) an attribute only when it differs. */
export function setAttr(el: Element, name: string, value: string | undefined): void {
  if (value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

/** Sets one CSS custom property or style property only when it differs. */
export function setStyle(el: HTMLElement, prop: string, value: string): void {
  if (el.style.getPropertyValue(prop) !== value) el.style.setProperty(prop, value);
}
