/*
 * Renkei — form helpers. Every form works without this file; it only makes two things quicker:
 *
 * Rows ([data-rows]): a Django formset whose rows can be added (from its <template>, the formset's
 * empty form) and removed. TOTAL_FORMS counts every row index ever handed out; a removed row is
 * simply absent, which the server reads as an empty row and skips. Of the spare empty rows the
 * server renders for browsers without JavaScript, only the first is kept.
 *
 * Pickers ([data-picker]): chosen organizations or people are chips holding hidden inputs. The
 * search box asks the server for matches through htmx as you type; "Add" turns a match into a chip
 * (rendered by the server in the match's <template>), "×" removes a chip. Without this file the
 * same buttons submit the form back to the page, which does the same on the server. A picker whose
 * matches depend on other fields ([data-picker-depends], e.g. the label chosen) searches again when
 * one of them changes.
 *
 * Served from our own origin; the CSP allows no inline script, so nothing here is inline either.
 */
(function () {
  "use strict";

  // --- Rows --------------------------------------------------------------------------------------

  function totalForms(rows) {
    return rows.querySelector('input[name$="-TOTAL_FORMS"]');
  }

  function updateAddButton(rows) {
    const add = rows.querySelector("[data-rows-add]");
    const max = Number(rows.dataset.rowsMax || 1000);
    add.disabled = rows.querySelectorAll("[data-row]").length >= max;
  }

  function addRow(rows) {
    const total = totalForms(rows);
    const index = Number(total.value);
    const list = rows.querySelector("[data-rows-list]");
    const html = rows
      .querySelector("template[data-rows-template]")
      .innerHTML.replaceAll("__prefix__", String(index))
      .replaceAll("__number__", String(index + 1));
    list.insertAdjacentHTML("beforeend", html);
    total.value = String(index + 1);
    const row = list.lastElementChild;
    row.querySelectorAll("[data-rows-remove]").forEach((button) => {
      button.hidden = false;
    });
    updateAddButton(rows);
    row.querySelector("select, input").focus();
  }

  function removeRow(button) {
    const row = button.closest("[data-row]");
    const rows = row.closest("[data-rows]");
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    updateAddButton(rows);
    // Keep the keyboard where it was: on the neighbouring row, or on "Add a row".
    (next ? next.querySelector("select, input") : rows.querySelector("[data-rows-add]")).focus();
  }

  function isBlank(row) {
    return (
      !row.querySelector(".errorlist") &&
      Array.from(row.querySelectorAll("select, input")).every((field) => field.value === "")
    );
  }

  function setUpRows(root) {
    root.querySelectorAll("[data-rows]").forEach((rows) => {
      // The spare empty rows are for browsers without this script; here one is enough.
      const blank = Array.from(rows.querySelectorAll("[data-row]")).filter(isBlank);
      blank.slice(1).forEach((row) => row.remove());
      rows.querySelectorAll("[data-rows-add], [data-rows-remove]").forEach((button) => {
        button.hidden = false;
      });
      updateAddButton(rows);
    });
  }

  // --- Pickers -----------------------------------------------------------------------------------

  function announce(picker, message) {
    const status = picker.querySelector("[data-picker-status]");
    // Cleared first, so the same words twice in a row are still read out.
    status.textContent = "";
    window.setTimeout(() => {
      status.textContent = message || "";
    }, 50);
  }

  function updateNone(picker) {
    const chosen = picker.querySelector("[data-picker-chosen]");
    picker.querySelector("[data-picker-none]").hidden = chosen.children.length > 0;
  }

  function search(picker, { focus = true } = {}) {
    const query = picker.querySelector("[data-picker-query]");
    window.htmx.trigger(query, "picker-search");
    if (focus) {
      query.focus();
    }
  }

  function addChip(button) {
    const picker = button.closest("[data-picker]");
    const chosen = picker.querySelector("[data-picker-chosen]");
    const result = button.closest("li");
    const already = Array.from(chosen.querySelectorAll('input[type="hidden"]')).some(
      (input) => input.value === button.value,
    );
    if (!already) {
      chosen.append(result.querySelector("template[data-picker-chip]").content.cloneNode(true));
    }
    const next = result.nextElementSibling || result.previousElementSibling;
    result.remove();
    updateNone(picker);
    announce(picker, button.dataset.pickerMessage);
    // On to the next match, so several can be added in a row; else back to the search box.
    (next ? next.querySelector("[data-picker-add]") : picker.querySelector("[data-picker-query]")).focus();
  }

  function removeChip(button) {
    const picker = button.closest("[data-picker]");
    button.closest("li").remove();
    updateNone(picker);
    announce(picker, button.dataset.pickerMessage);
    picker.querySelector("[data-picker-query]").focus();
  }

  // --- Wiring ------------------------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }
    const actions = [
      ["[data-rows-add]", (button) => addRow(button.closest("[data-rows]"))],
      ["[data-rows-remove]", removeRow],
      ["[data-picker-add]", addChip],
      ["[data-picker-remove]", removeChip],
      // Enter in a text field presses the form's first submit button; here, that does nothing.
      ["[data-form-default]", () => {}],
    ];
    // Without htmx the Search button does its work the long way round: the form goes to the server.
    if (window.htmx) {
      actions.push(["[data-picker-search]", (button) => search(button.closest("[data-picker]"))]);
    }
    for (const [selector, action] of actions) {
      const button = target.closest(selector);
      if (button) {
        event.preventDefault();
        action(button);
        return;
      }
    }
  });

  document.addEventListener("keydown", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (event.key === "Enter" && window.htmx && target && target.matches("[data-picker-query]")) {
      event.preventDefault();
      search(target.closest("[data-picker]"));
    }
  });

  // Matches shown for an earlier label or issuer may no longer be choosable: ask again.
  document.addEventListener("change", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target || !window.htmx) {
      return;
    }
    document.querySelectorAll("[data-picker-depends]").forEach((picker) => {
      const query = picker.querySelector("[data-picker-query]");
      if (query.value.trim() && target.matches(picker.dataset.pickerDepends)) {
        search(picker, { focus: false });
      }
    });
  });

  // After htmx puts new matches in, say how many there are.
  document.addEventListener("htmx:afterSwap", (event) => {
    const results = event.target;
    if (results instanceof Element && results.matches("[data-picker-results]")) {
      const count = results.querySelector("[data-picker-count]");
      announce(results.closest("[data-picker]"), count ? count.textContent : "");
    }
  });

  setUpRows(document);
})();
