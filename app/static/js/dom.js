// Building DOM from data without innerHTML: every text is set as text, never parsed as markup.

/** An element: `h("a", {href: url, class: "x"}, "text", child)`; null children are skipped. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replace the options of a <select>, keeping `selected` chosen. */
export function setOptions(select, options, selected) {
  select.replaceChildren(
    ...options.map(([value, label]) =>
      h("option", { value, selected: String(value) === String(selected) }, label),
    ),
  );
  select.value = String(selected);
}
