// A DLT template's page: the senders' search box offers the senders of the account chosen above it (a template
// belongs to one account; a sender of another is refused on save), and follows the account when it changes. Django's
// autocomplete sends only the term and the field; this adds the account to each of the senders' searches (a jQuery
// prefilter, so that it holds whatever order the scripts start in). No account: every sender, as a template without
// an account (from an import made before the import asked for one) may be registered for senders of several.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Once the page is read: this script may come before the admin's jquery.init.js, which defines django.jQuery.
  const $ = window.django && window.django.jQuery;
  if (!$) return;
  $.ajaxPrefilter(function (options) {
    if (typeof options.data !== "string") return;
    const params = new URLSearchParams(options.data);
    if (params.get("model_name") !== "dlttemplate" || params.get("field_name") !== "senders") return;
    const account = document.getElementById("id_account");
    if (account && account.value) options.data += "&" + new URLSearchParams({account: account.value}).toString();
  });
});
