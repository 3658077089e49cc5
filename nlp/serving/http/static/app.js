// The page of `s2s serve`: plain browser JavaScript, no build step, no outside scripts.
// It talks to the same JSON API as any other client (see /openapi.json).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  models: new Map(),         // name -> the /v1/models entry
  conversations: new Map(),  // model name -> the id the server issued for our conversation
  // model name -> its last output: {body: what /attention draws it from, text, picture: the
  // heatmap's URL once drawn}. Per model, so the attention section never shows one model's
  // heatmap under another.
  outputs: new Map(),
  // model name -> its chat log (the message elements): each model its own conversation, so
  // switching models never shows one model's exchange above another's replies.
  logs: new Map(),
  // model name -> how many times "New" was clicked: a late reply belongs to a conversation
  // left, and is dropped
  generations: new Map(),
  // models whose message awaits its reply: their input waits too, so that the next message
  // continues the conversation the reply names rather than opening another
  sending: new Set(),
  limits: {},  // what a request may hold, the server's own figures (/v1/models)
};
// The provenances of a chat reply the model chose, whose attention the server can draw; a
// fallback is the chat's own line, and a notice or a command's answer has none ("").
const DRAWN_REPLIES = new Set(["generated", "retrieved", "refined"]);

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

function say(text) { $("status").textContent = text || ""; }

async function explain(response) {
  // One readable line from an error answer: FastAPI's 422 lists the fields at fault.
  let detail = response.statusText;
  try {
    const body = await response.json();
    if (Array.isArray(body.detail)) {
      detail = body.detail.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
    } else if (body.detail) {
      detail = body.detail;
    }
  } catch (_) { /* not JSON */ }
  const retry = response.headers.get("Retry-After");
  return `${response.status} ${detail}` + (retry ? ` (retry in ${retry} s)` : "");
}

async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: headers(),
                                       body: JSON.stringify(body) });
  if (!response.ok) {
    const error = new Error(await explain(response));
    error.status = response.status;
    throw error;
  }
  return response;
}

function selected() { return state.models.get($("model").value); }
function modelPath(endpoint) {
  return `/v1/models/${encodeURIComponent($("model").value)}/${endpoint}`;
}

function showModel() {
  const model = selected();
  if (!model) return;
  $("model-info").textContent = $("model-info").title =
    `${model.task} · ${model.languages.join(", ") || "?"} · ${model.decoding.summary}`;
  $("chat-log").replaceChildren(...(state.logs.get(model.name) || []));
  $("chat-log").scrollTop = $("chat-log").scrollHeight;
  const waiting = state.sending.has(model.name);
  for (const [section, endpoint] of [["chat-section", "chat"],
                                     ["headlines-section", "headlines"]]) {
    const on = model.endpoints.includes(endpoint);
    $(section).classList.toggle("off", !on);
    for (const control of $(section).querySelectorAll("input, textarea, button")) {
      control.disabled = !on || (waiting && control.id !== "chat-new");
    }
  }
  showOutput();
}

function remember(model, body, text, picture = null) {
  // A model's new output: its earlier heatmap is stale, so it goes.
  forget(model);
  state.outputs.set(model, { body, text, picture });
  if (model === $("model").value) showOutput();
}

function forget(model) {
  // The model has no output to draw (any more): no button, no heatmap.
  const old = state.outputs.get(model);
  if (old && old.picture && old.picture.startsWith("blob:")) URL.revokeObjectURL(old.picture);
  state.outputs.delete(model);
  if (model === $("model").value) showOutput();
}

function showOutput() {
  // The attention section of the selected model: its last output, and its heatmap if drawn.
  const model = $("model").value;
  const output = state.outputs.get(model);
  $("attention-go").disabled = !output;
  $("attention-of").textContent = output ? `${model} · ${output.text}` : "";
  const img = $("attention-img");
  img.hidden = !(output && output.picture);
  if (img.hidden) img.removeAttribute("src"); else img.src = output.picture;
}

async function loadModels() {
  say("");
  const response = await fetch("/v1/models", { headers: headers() });
  if (!response.ok) { say("Models · 模型: " + await explain(response)); return; }
  const { models, limits } = await response.json();
  state.limits = limits || {};
  const input = $("chat-input");
  if (state.limits.max_text_chars) input.maxLength = state.limits.max_text_chars;
  else input.removeAttribute("maxlength");
  const most = state.limits.max_articles;
  $("articles-limit").textContent =
    most ? `At most ${most} articles at a time · 一次最多 ${most} 篇` : "";
  const select = $("model");
  const previous = select.value;
  select.replaceChildren();
  state.models.clear();
  for (const model of models) {
    state.models.set(model.name, model);
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = `${model.name} (${model.task})`;
    select.append(option);
  }
  if (state.models.has(previous)) select.value = previous;
  showModel();
}

function addMessage(model, who, text) {
  // Into the model's own log; shown at once if it is the selected model's.
  const div = document.createElement("div");
  div.className = "msg " + who;
  div.textContent = text;
  if (!state.logs.has(model)) state.logs.set(model, []);
  state.logs.get(model).push(div);
  if (model === $("model").value) {
    $("chat-log").append(div);
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
  }
  return div;
}

async function chat(model, message) {
  // The server issues the conversation's id with its first answer (ids are unguessable, and
  // it answers only to the ids it issued); one it has forgotten (an hour idle) starts anew.
  const path = `/v1/models/${encodeURIComponent(model)}/chat`;
  const known = state.conversations.get(model);
  let response;
  try {
    response = await post(path, known ? { conversation: known, message } : { message });
  } catch (error) {
    if (!known || !error.message.startsWith("404 unknown conversation")) throw error;
    response = await post(path, { message });
  }
  return response.json();
}

function generation(model) { return state.generations.get(model) || 0; }

async function sendMessage(event) {
  event.preventDefault();
  const message = $("chat-input").value;
  const model = $("model").value;
  if (!message.trim() || state.sending.has(model)) return;
  say("");
  const sent = generation(model);
  state.sending.add(model);
  showModel();
  let body, failure;
  try {
    body = await chat(model, message);
  } catch (error) {
    failure = error;
  }
  if (generation(model) !== sent) return;  // "New" was clicked meanwhile
  state.sending.delete(model);
  showModel();
  if (failure) {  // the message stays in the input, to send again or change
    say("Chat · 聊天: " + failure.message);
    return;
  }
  if ($("chat-input").value === message) $("chat-input").value = "";
  state.conversations.set(model, body.conversation);
  addMessage(model, "you", message);
  addMessage(model, "bot", body.reply);
  // What the server says the answer is (its provenance), not a guess from the message:
  // "/ hi" is a message to the model, "/RESET" a command.
  const output = state.outputs.get(model);
  if (body.picture_png_base64 && output) {  // /why: the heatmap of the last reply
    output.picture = "data:image/png;base64," + body.picture_png_base64;
    showOutput();
  } else if (DRAWN_REPLIES.has(body.provenance)) {  // what the heatmap button draws next
    remember(model, { conversation: body.conversation }, body.reply);
  } else if (body.provenance || message.trim().startsWith("/")) {
    // A fallback replaced the last reply, and a command (/reset) may have: forgotten, so
    // that the button never names a reply the server no longer draws. A notice ("" to a
    // message) left it as it was.
    forget(model);
  }
}

function articlesProblem(articles) {
  // What the server would refuse (its limits from /v1/models), as a sentence; "" if none.
  const { max_articles: most, max_text_chars: longest } = state.limits;
  if (most && articles.length > most) {
    return `${articles.length} articles: at most ${most} at a time. Split them, please. · ` +
      `共 ${articles.length} 篇：一次最多 ${most} 篇，请分批生成。`;
  }
  const sizes = articles.map((text) => [...text].length);  // characters, as the server counts
  const long = longest ? sizes.findIndex((size) => size > longest) : -1;
  if (long >= 0) {
    return `Article ${long + 1} has ${sizes[long]} characters: at most ${longest}. · ` +
      `第 ${long + 1} 篇有 ${sizes[long]} 个字符：最多 ${longest} 个。`;
  }
  return "";
}

async function generateHeadlines() {
  const articles = $("articles").value.split("\n").filter((line) => line.trim());
  if (!articles.length) { say("Paste at least one article · 请粘贴文章"); return; }
  const problem = articlesProblem(articles);
  if (problem) {  // said here, in words, before the server refuses it in a schema's
    $("headlines-out").replaceChildren();
    say(problem);
    return;
  }
  say("");
  $("headlines-go").disabled = true;
  const model = $("model").value;
  try {
    const response = await post(modelPath("headlines"), { articles });
    const body = await response.json();
    const list = $("headlines-out");
    list.replaceChildren();
    body.headlines.forEach((item) => {
      const li = document.createElement("li");
      if (item.error) {
        li.innerHTML = '<span class="error"></span>';
        li.firstChild.textContent = item.error;
      } else {
        li.textContent = item.headline + " ";
        const score = document.createElement("span");
        score.className = "score";
        score.textContent = `(${item.score.toFixed(2)})`;
        li.append(score);
      }
      list.append(li);
    });
    const last = body.headlines[body.headlines.length - 1];
    remember(model, { text: articles[articles.length - 1] }, last.headline || last.error);
  } catch (error) {
    $("headlines-out").replaceChildren();  // the earlier headlines are not these articles'
    say("Headlines · 标题: " + error.message);
  } finally {
    $("headlines-go").disabled = false;
  }
}

async function showAttention() {
  const model = $("model").value;
  const output = state.outputs.get(model);
  if (!output) return;
  say("");
  try {
    const response = await post(`/v1/models/${encodeURIComponent(model)}/attention`,
                                output.body);
    const blob = await response.blob();
    if (state.outputs.get(model) !== output) return;  // a newer output came meanwhile
    output.picture = URL.createObjectURL(blob);
    showOutput();
  } catch (error) {
    // 409: the conversation has no reply to draw (reset, or a fallback's)
    if (error.status === 409 && state.outputs.get(model) === output) forget(model);
    say("Attention · 注意力: " + error.message);
  }
}

$("model").addEventListener("change", showModel);
$("token").addEventListener("change", () => {
  sessionStorage.setItem("s2s-token", $("token").value);
  loadModels();
});
$("chat-form").addEventListener("submit", sendMessage);
$("chat-new").addEventListener("click", () => {
  const model = $("model").value;
  state.generations.set(model, generation(model) + 1);
  state.sending.delete(model);
  state.conversations.delete(model);
  state.logs.delete(model);
  showModel();
});
$("headlines-go").addEventListener("click", generateHeadlines);
$("attention-go").addEventListener("click", showAttention);
$("token").value = sessionStorage.getItem("s2s-token") || "";
loadModels();
