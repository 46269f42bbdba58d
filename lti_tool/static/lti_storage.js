// LTI Client Side postMessage storage (put before the platform login, get at the launch).
// Used only when the browser blocks the tool's cookies and the platform offers lti_storage_target.
(function () {
  "use strict";
  var script = document.getElementById("lti-storage");
  var data = script.dataset;
  var status = document.getElementById("storage-status");
  var messageId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();

  function targetFrame() {
    var parent = window.opener || window.parent;
    if (data.target === "_parent") { return parent; }
    try { return parent.frames[data.target] || parent; } catch (e) { return parent; }
  }

  function fail(text) {
    status.textContent = text;
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== data.origin || !event.data || event.data.message_id !== messageId) { return; }
    var reply = event.data;
    if (reply.error) { fail("Your course page could not keep this launch (" + (reply.error.code || "error") + "). Please open the activity in a new window."); return; }
    if (data.mode === "put" && reply.subject === "lti.put_data.response") {
      window.location.assign(data.next);
    } else if (data.mode === "get" && reply.subject === "lti.get_data.response") {
      var form = document.getElementById("storage-form");
      form.elements.lti_storage_value.value = reply.value || "";
      form.submit();
    }
  });

  var message = { subject: data.mode === "put" ? "lti.put_data" : "lti.get_data", message_id: messageId, key: data.key };
  if (data.mode === "put") { message.value = data.value; }
  targetFrame().postMessage(message, data.origin);
  window.setTimeout(function () {
    fail("Your course page did not answer. Please open the activity in a new window.");
  }, 5000);
})();
