// The demo space: polls /api/space?as=<member> (a view over the local Webex and Graph) and acts through the
// local Webex API as that member: messages (JSON, or multipart with the file) and card clicks.
(function () {
  "use strict";
  const POLL_MS = 400;
  const markdown = window.markdownit({html: false, linkify: true, breaks: true});
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let me = params.get("as");
  let view = null;
  const rendered = new Map();   // message id -> <li>
  let file = null;
  let following = true;         // the timeline sticks to its newest message until the reader scrolls up

  function follow() {
    if (following) $("timeline").scrollTop = $("timeline").scrollHeight;
  }

  async function api(path, options = {}) {
    const response = await fetch(`${path}${path.includes("?") ? "&" : "?"}as=${encodeURIComponent(me || "")}`,
      options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
    return body;
  }

  function showError(error) {
    $("error").textContent = error ? String(error.message || error) : "";
    $("error").hidden = !error;
  }

  // ---- members ------------------------------------------------------------------------------

  function fillMembers(members) {
    const select = $("member");
    if (select.options.length) return;
    for (const member of members) {
      select.add(new Option(`${member.name} (${member.role})`, member.id));
    }
    select.value = me;
    select.addEventListener("change", () => switchTo(select.value));
  }

  function switchTo(personId) {
    me = personId;
    params.set("as", me);
    history.replaceState(null, "", `?${params}`);
    rendered.clear();
    $("timeline").replaceChildren();
    poll();
  }

  // ---- messages -----------------------------------------------------------------------------

  function time(iso) {
    return new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  }

  function messageElement(message) {
    const item = document.createElement("li");
    item.className = "message" + (message.bot ? " bot" : "") + (message.private ? " private" : "");
    item.dataset.id = message.id;
    item.dataset.author = message.author;
    const header = document.createElement("header");
    header.innerHTML = '<span class="author"></span><time></time>';
    header.querySelector(".author").textContent = message.author;
    header.querySelector("time").textContent = time(message.created);
    if (message.private) {
      const tag = document.createElement("span");
      tag.className = "private-tag";
      tag.textContent = "Only you can see this";
      header.appendChild(tag);
    }
    item.appendChild(header);
    if (message.card) {
      const host = document.createElement("div");
      host.className = "webex-card";
      item.appendChild(host);
      RolloverCards.render(message.card, host, {
        onSubmit: (submission) => click(message.id, submission.inputs),
      }).then((result) => {
        if (result.errors.length) host.dataset.errors = result.errors.join("\n");
        follow();
      });
    } else {
      const body = document.createElement("div");
      body.className = "body";
      body.innerHTML = markdown.render(message.markdown || message.text || "");
      item.appendChild(body);
    }
    if (message.files.length) {
      const files = document.createElement("ul");
      files.className = "files";
      for (const attached of message.files) {
        const link = document.createElement("a");
        link.href = `${attached.url}?as=${encodeURIComponent(me)}`;
        link.download = attached.name;
        link.textContent = attached.name;
        files.appendChild(document.createElement("li")).appendChild(link);
      }
      item.appendChild(files);
    }
    return item;
  }

  function showMessages(messages) {
    const timeline = $("timeline");
    const wanted = new Set(messages.map((message) => message.id));
    for (const [id, element] of rendered) {      // deleted (a card replaced by its successor): gone
      if (!wanted.has(id)) {
        element.remove();
        rendered.delete(id);
      }
    }
    let previous = null;
    for (const message of messages) {
      let element = rendered.get(message.id);
      if (!element) {
        element = messageElement(message);
        rendered.set(message.id, element);
        timeline.insertBefore(element, previous ? previous.nextSibling : timeline.firstChild);
      }
      previous = element;
    }
    follow();
  }

  // ---- the Entra panel ----------------------------------------------------------------------

  function certificateItem(cert) {
    const item = document.createElement("li");
    item.className = "cert" + (cert.active ? " active" : "");
    const expired = new Date(cert.expires) < new Date();
    item.innerHTML = '<span class="name"></span> <span class="thumb"></span><br>expires <span class="expires"></span>';
    item.querySelector(".name").textContent = cert.name;
    item.querySelector(".thumb").textContent = cert.thumbprint.slice(0, 12);
    item.querySelector(".expires").textContent = cert.expires.slice(0, 10);
    item.dataset.thumbprint = cert.thumbprint;
    for (const [show, label, css] of [[cert.active, "active", "badge"], [expired, "expired", "badge expired"]]) {
      if (!show) continue;
      const badge = document.createElement("span");
      badge.className = css;
      badge.textContent = label;
      item.appendChild(badge);
    }
    return item;
  }

  function certificateList(kind, title, certificates) {
    const part = document.createElement("div");
    part.dataset.kind = kind;
    part.innerHTML = '<p class="what"></p><ul></ul>';
    part.querySelector(".what").textContent = title;
    const list = part.querySelector("ul");
    if (!certificates.length) list.innerHTML = '<li class="cert">none</li>';
    for (const cert of certificates) list.appendChild(certificateItem(cert));
    return part;
  }

  function showEntra(entra) {
    $("entra").hidden = !entra;
    if (!entra) return;
    const apps = entra.apps.map((app) => {
      const box = document.createElement("section");
      box.className = "app";
      box.dataset.app = app.name;
      box.innerHTML = "<h3></h3>";
      box.querySelector("h3").textContent = app.name;
      const signedRequests = app.signedRequestsRequired ? "required" : "not required";
      box.append(certificateList("signing", "Signing certificates", app.signing),
        certificateList("verification", `Verification certificates (signed requests ${signedRequests})`,
          app.verification),
        certificateList("encryption", "Token encryption", app.encryption));
      return box;
    });
    $("entra-apps").replaceChildren(...apps);
    const writes = entra.writes.map((write) => {
      const item = document.createElement("li");
      item.innerHTML = "<strong></strong> <code></code> → <span></span>";
      item.querySelector("strong").textContent = write.method;
      item.querySelector("code").textContent = write.path;
      item.querySelector("span").textContent = `${write.status} at ${write.at.slice(11, 19)} UTC`;
      return item;
    });
    $("entra-writes").replaceChildren(...(writes.length ? writes : [Object.assign(
      document.createElement("li"), {textContent: "none yet", className: "none"})]));
  }

  // ---- polling ------------------------------------------------------------------------------

  let timer = null;
  let lastEntra = "";

  async function poll() {
    clearTimeout(timer);
    try {
      view = await api("/api/space");
      if (!me) me = view.me;
      $("room-title").textContent = view.room.title;
      document.title = `${view.room.title} — Rollover demo`;
      fillMembers(view.members);
      showMessages(view.messages);
      const entra = JSON.stringify(view.entra);
      if (entra !== lastEntra) {
        lastEntra = entra;
        showEntra(view.entra);
      }
      document.body.dataset.ready = "true";
    } catch (error) {
      showError(error);
    }
    timer = setTimeout(poll, POLL_MS);
  }

  // ---- acting -------------------------------------------------------------------------------

  async function click(messageId, inputs) {
    showError(null);
    try {
      await api("/api/actions", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({messageId, inputs})});
    } catch (error) {
      showError(error);
    }
  }

  function attach(chosen) {
    file = chosen || null;
    $("attachment").hidden = !file;
    $("attachment-name").textContent = file ? file.name : "";
  }

  async function send(event) {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text && !file) return;
    // In a group space Webex clients put the bot's mention in front: it hears only messages that mention it.
    const mention = view.room.type === "group" ? `<@personId:${view.bot.id}|${view.bot.name}> ` : "";
    const fields = {roomId: view.room.id, markdown: mention + text};
    let options;
    if (file) {   // a real multipart message, as Webex clients upload files
      const form = new FormData();
      for (const [name, value] of Object.entries(fields)) form.append(name, value);
      form.append("files", file, file.name);
      options = {method: "POST", body: form};
    } else {
      options = {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(fields)};
    }
    showError(null);
    try {
      await api("/api/messages", options);
      $("text").value = "";
      $("file").value = "";
      attach(null);
      poll();
    } catch (error) {
      showError(error);
    }
  }

  $("timeline").addEventListener("scroll", () => {
    const timeline = $("timeline");
    following = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
  });
  $("composer").addEventListener("submit", send);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) send(event);
  });
  $("file").addEventListener("change", () => attach($("file").files[0]));
  $("attachment-remove").addEventListener("click", () => { $("file").value = ""; attach(null); });
  // Dropping a file anywhere on the page attaches it, as in a Webex space.
  document.addEventListener("dragover", (event) => { event.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    if (event.dataTransfer.files.length) attach(event.dataTransfer.files[0]);
  });

  poll();
})();
