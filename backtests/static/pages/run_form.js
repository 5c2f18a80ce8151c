// The new-run form: shows the chosen strategy's parameters only (without this script
// every strategy's are shown, and the server reads the chosen one's).
(() => {
  "use strict";
  const select = document.getElementById("strategy_id");
  const show = () => {
    for (const fieldset of document.querySelectorAll(".strategy-params")) {
      const chosen = fieldset.dataset.strategy === select.value;
      fieldset.hidden = !chosen;
      for (const input of fieldset.querySelectorAll("input")) input.disabled = !chosen;
    }
  };
  select.addEventListener("change", show);
  show();
})();
