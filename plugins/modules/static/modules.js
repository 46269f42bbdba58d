/* Reflection autosave: save as the candidate types (after a pause), with the launch reference
   in the request (cookies may be refused in the VLE's iframe). Text that could not be saved is
   kept on this device (localStorage, when the browser allows it) and shown again on reload. */
(function () {
  "use strict";
  var PAUSE_MS = 1200;
  var article = document.querySelector("[data-draft-prefix]");
  if (!article || !window.fetch || !window.FormData) { return; }
  var prefix = article.getAttribute("data-draft-prefix");

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }
  function keep(key, value) {
    var s = storage();
    if (!s) { return; }
    try { s.setItem(key, JSON.stringify(value)); } catch (e) { /* full or refused */ }
  }
  function kept(key) {
    var s = storage();
    if (!s) { return null; }
    try { return JSON.parse(s.getItem(key) || "null"); } catch (e) { return null; }
  }
  function forget(key) {
    var s = storage();
    if (s) { try { s.removeItem(key); } catch (e) { /* refused */ } }
  }
  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function Autosave(form) {
    this.form = form;
    this.text = form.querySelector("textarea[name=text]");
    this.version = form.querySelector("input[name=version]");
    this.status = form.querySelector("[data-status]");
    this.key = prefix + ":" + form.getAttribute("data-draft-key");
    this.timer = null;
    this.saving = false;
    this.again = false;
    this.stopped = false;
    this.lastSaved = this.text.value;
    var self = this;
    this.text.addEventListener("input", function () {
      keep(self.key, { text: self.text.value, base: self.version.value, at: new Date().toISOString() });
      if (self.stopped) { return; }
      self.say("Not saved yet…", false);
      clearTimeout(self.timer);
      self.timer = setTimeout(function () { self.save(); }, PAUSE_MS);
    });
    this.text.addEventListener("blur", function () { if (self.text.value !== self.lastSaved) { self.save(); } });
    form.addEventListener("submit", function (event) { event.preventDefault(); self.save(); });
    this.restore();
  }
  Autosave.prototype.say = function (message, isError) {
    this.status.textContent = message;
    this.status.classList.toggle("is-error", !!isError);
  };
  Autosave.prototype.restore = function () {
    var draft = kept(this.key);
    if (!draft || typeof draft.text !== "string") { return; }
    if (draft.text === this.text.value) { forget(this.key); return; }
    this.text.value = draft.text;
    this.say("Restored text from this device that had not been saved; saving it now…", false);
    this.save();
  };
  Autosave.prototype.save = function () {
    clearTimeout(this.timer);
    if (this.stopped) { return; }
    if (this.saving) { this.again = true; return; }
    var self = this;
    var sent = this.text.value;
    var body = new FormData(this.form);
    body.set("launch", article.getAttribute("data-launch"));
    this.saving = true;
    this.say("Saving…", false);
    fetch(this.form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (data) { return { status: response.status, data: data }; });
    }).then(function (answer) {
      self.saving = false;
      if (answer.status === 200) {
        self.version.value = answer.data.version;
        self.lastSaved = sent;
        if (self.text.value === sent) { forget(self.key); }
        if (answer.data.conflict) {
          self.say("Saved at " + clock(answer.data.saved_at) + ". Another tab or device had saved a different version in between; both are kept in your saved versions.", false);
        } else {
          self.say("Saved at " + clock(answer.data.saved_at) + ".", false);
        }
      } else if (answer.status === 401) {
        self.stopped = true;
        keep(self.key, { text: self.text.value, base: self.version.value, at: new Date().toISOString() });
        self.say(answer.data.message || "Your session has ended: reopen the activity from your course to save.", true);
      } else {
        self.say(answer.data.message || "Not saved: the tool refused the text.", true);
      }
      if (self.again && !self.stopped) { self.again = false; self.save(); }
    }).catch(function () {
      self.saving = false;
      self.say("Not saved yet: the tool cannot be reached. Your text is kept on this device and will be saved when you type again.", true);
    });
  };

  Array.prototype.forEach.call(document.querySelectorAll("form[data-autosave]"), function (form) {
    new Autosave(form);
  });
})();
