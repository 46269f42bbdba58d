// LTI Dynamic Registration: tell the platform we are done so it can close this window or frame.
(function () {
  "use strict";
  function close() {
    (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
  }
  document.getElementById("close-registration").addEventListener("click", close);
  close();
})();
