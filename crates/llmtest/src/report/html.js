// The case table's filters. State lives in the URL fragment (#cases?suite=…&model=…), so a
// heat-map cell is a plain link and a filtered view can be shared.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#cases tbody tr"));
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var ctl = {
    suite: document.getElementById("f-suite"),
    model: document.getElementById("f-model"),
    outcome: document.getElementById("f-outcome"),
    q: document.getElementById("f-q"),
    flips: document.getElementById("f-flips")
  };
  var count = document.getElementById("f-count");

  function apply() {
    var s = ctl.suite.value, m = ctl.model.value, o = ctl.outcome.value;
    var q = ctl.q.value.trim().toLowerCase(), f = ctl.flips.checked;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var d = rows[i].dataset;
      var ok = (!s || d.suite === s) && (!m || d.model === m) &&
        (!o || d.outcome === o || d.group === o) && (!f || d.flip === "1") &&
        (!q || text[i].indexOf(q) !== -1);
      rows[i].hidden = !ok;
      if (ok) shown++;
    }
    count.textContent = "showing " + shown + " of " + rows.length;
  }

  function fromHash() {
    var h = location.hash, i = h.indexOf("?");
    if (h.indexOf("#cases") !== 0 || i < 0) return false;
    var p = new URLSearchParams(h.slice(i + 1));
    ctl.suite.value = p.get("suite") || "";
    ctl.model.value = p.get("model") || "";
    ctl.outcome.value = p.get("outcome") || "";
    ctl.q.value = p.get("q") || "";
    ctl.flips.checked = p.get("flips") === "1";
    return true;
  }

  ["suite", "model", "outcome", "flips"].forEach(function (k) { ctl[k].addEventListener("change", apply); });
  ctl.q.addEventListener("input", apply);
  window.addEventListener("hashchange", function () { if (fromHash()) apply(); });
  fromHash();
  apply();
  document.body.dataset.ready = "1";
})();
