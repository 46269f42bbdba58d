// LTI Client Side postMessage Storage: lti.put_data before the platform login, lti.get_data at
// the launch. Used only when the browser keeps no cookies for the tool in this frame and the
// platform offered lti_storage_target.
(function () {
  "use strict";
  var TIMEOUT_MS = 5000;
  var data = document.getElementById("lti-storage").dataset;
  var status = document.getElementById("storage-status");
  var fallback = document.getElementById("storage-fallback");
  var messageId = (window.crypto && crypto.randomUUID)
    ? crypto.randomUUID()
    : String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  var finished = false;
  var timer = null;

  // The platform's window: the page around this frame, or the one that opened this window.
  function platformWindow() {
    if (window.parent && window.parent !== window) { return window.parent; }
    return window.opener || null;
  }

  // lti_storage_target names the frame that keeps the data: "_parent", or a frame of the platform's page.
  function storageFrame(platform) {
    if (!platform || data.target === "_parent") { return platform; }
    try { return platform.frames[data.target] || platform; } catch (e) { return platform; }
  }

  function finish() {
    finished = true;
    if (timer !== null) { window.clearTimeout(timer); }
  }

  function fail(text) {
    if (finished) { return; }
    finish();
    status.textContent = text + " Please open the activity in a new window.";
    if (fallback) { fallback.hidden = false; }
  }

  var target = storageFrame(platformWindow());
  if (!target) {
    fail("This activity is not inside a course page.");
    return;
  }

  window.addEventListener("message", function (event) {
    // Only the platform's storage frame may answer, and only to this request.
    if (finished || event.origin !== data.origin || event.source !== target) { return; }
    var reply = event.data;
    if (!reply || typeof reply !== "object" || reply.message_id !== messageId) { return; }
    if (reply.key !== undefined && reply.key !== data.key) { return; }
    if (reply.error) {
      fail("Your course page could not keep this launch (" + String(reply.error.code || "error") + ").");
      return;
    }
    if (data.mode === "put" && reply.subject === "lti.put_data.response") {
      finish();
      window.location.assign(data.next);
    } else if (data.mode === "get" && reply.subject === "lti.get_data.response") {
      if (typeof reply.value !== "string" || reply.value === "") {
        fail("Your course page no longer has this launch.");
        return;
      }
      finish();
      var form = document.getElementById("storage-form");
      form.elements.lti_storage_value.value = reply.value;
      form.submit();
    }
  });

  var message = { subject: data.mode === "put" ? "lti.put_data" : "lti.get_data", message_id: messageId, key: data.key };
  if (data.mode === "put") { message.value = data.value; }
  timer = window.setTimeout(function () { fail("Your course page did not answer."); }, TIMEOUT_MS);
  try {
    target.postMessage(message, data.origin);
  } catch (e) {
    fail("Your course page could not be reached.");
  }
})();
