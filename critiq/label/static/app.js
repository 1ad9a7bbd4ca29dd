// critiq label: shows one pair at a time; every string from the server is inserted as text (textContent), never
// parsed as HTML. Each answer is sent and saved on disk before the next pair appears. Every request goes to a path
// relative to the page's, /KEY/, which holds the per-launch secret: another site cannot make one.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const newId = () =>
    window.crypto && window.crypto.randomUUID
      ? window.crypto.randomUUID()
      : Math.random().toString(36).slice(2) + Date.now().toString(36);
  const tab = store.getItem("critiq-tab") || newId();
  store.setItem("critiq-tab", tab);
  let current = null;
  let busy = false;

  function history() {
    try {
      const ids = JSON.parse(store.getItem("critiq-answered") || "[]");
      return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
    } catch (error) {
      return [];
    }
  }
  function setHistory(ids) {
    store.setItem("critiq-answered", JSON.stringify(ids.slice(-200)));
  }

  function say(text) {
    $("message").textContent = text || "";
  }

  function show(element, text) {
    element.hidden = !text;
    element.textContent = text || "";
  }

  function render(reply) {
    const progress = reply.progress;
    let line = `${progress.labels} / ${progress.target} labels`;
    if (progress.skipped) line += ` · ${progress.skipped} skipped`;
    if (progress.labels >= progress.target) line += " · target reached: stop with Ctrl-C, or go on";
    $("progress").textContent = line;
    $("annotator").textContent = reply.annotator ? `(annotator: ${reply.annotator})` : "";
    $("task").textContent = reply.task ? `Which text is better as ${reply.task}?` : "Which text is better?";
    current = reply.pair;
    document.body.classList.toggle("finished", !current);
    if (!current) {
      document.body.dataset.pair = "";
      say("No pair left: every pair of this corpus has been answered.");
      return;
    }
    document.body.dataset.pair = current.id;
    document.body.classList.toggle("code", Boolean(current.code));
    $("shared-prompt").hidden = !current.prompt;
    $("prompt").textContent = current.prompt || "";
    show($("prompt-a"), current.prompt_a);
    show($("prompt-b"), current.prompt_b);
    $("text-a").textContent = current.a;
    $("text-b").textContent = current.b;
    $("text-a").scrollTop = 0;
    $("text-b").scrollTop = 0;
    $("picked").textContent = `picked: ${current.picked}`;
    $("note").value = current.note || "";
  }

  async function call(method, url, body) {
    const options = { method, headers: { Accept: "application/json" }, cache: "no-store" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const problem = new Error((data && data.error) || `HTTP ${response.status}`);
      problem.status = response.status;
      throw problem;
    }
    return data;
  }

  async function run(action) {
    if (busy) return;
    busy = true;
    document.body.classList.add("busy");
    try {
      await action();
    } catch (error) {
      if (error.status === 409) {
        say(`${error.message} — showing the pair this server holds for this page.`);
        try {
          render(await call("POST", "api/next", { tab }));
        } catch (again) {
          say(`error: ${again.message}`);
        }
      } else {
        say(`error: ${error.message}`);
      }
    } finally {
      busy = false;
      document.body.classList.remove("busy");
    }
  }

  function load() {
    return run(async () => render(await call("POST", "api/next", { tab })));
  }

  function answer(choice) {
    if (!current) return;
    const pair = current;
    return run(async () => {
      const reply = await call("POST", "api/answer", {
        tab,
        ticket: pair.ticket,
        id: pair.id,
        choice,
        note: $("note").value,
      });
      const ids = history();
      ids.push(pair.id);
      setHistory(ids);
      say(choice === "tie" ? "skipped (tie)" : "saved");
      render(reply);
    });
  }

  function undo() {
    return run(async () => {
      const ids = history();
      const last = ids.length ? ids[ids.length - 1] : null;
      let reply;
      try {
        reply = await call("POST", "api/undo", { tab, id: last });
      } finally {
        if (last !== null) ids.pop(); // done, or refused (answered elsewhere, or undone already): forget it
        setHistory(ids);
      }
      say("undone: answer this pair again");
      render(reply);
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target === $("note")) {
      if (event.key === "Escape" || event.key === "Enter") {
        event.preventDefault();
        $("note").blur();
      }
      return;
    }
    const actions = {
      ArrowLeft: () => answer("a"),
      a: () => answer("a"),
      ArrowRight: () => answer("b"),
      b: () => answer("b"),
      t: () => answer("tie"),
      u: () => undo(),
      n: () => $("note").focus(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
  $("choose-a").addEventListener("click", () => answer("a"));
  $("choose-b").addEventListener("click", () => answer("b"));
  $("choose-tie").addEventListener("click", () => answer("tie"));
  $("undo").addEventListener("click", () => undo());
  load();
})();
