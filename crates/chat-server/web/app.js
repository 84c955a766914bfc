// Demo web client of chat-message-service, and a reference for client developers.
//
// It follows docs/protocol.md, in particular §8 "Recipe: a reliable client":
//   - messages are stored per chat keyed by message_id, so every duplicate copy (live, sync,
//     history, a resend's second delivery) collapses into one;
//   - sends go through an outbox keyed by client_msg_id, are resent with the same id after a
//     reconnect, and turn from "sending" into "sent" on their ack;
//   - after any unexpected close the socket reconnects with exponential backoff and jitter, then
//     syncs every chat from the newest message_id it has;
//   - older history is paged with the cursor of GET /users/chat/{chat_id}.
// No framework and no build step: plain DOM code in one file. Every URL is relative to the page.
'use strict';

// ---- Settings --------------------------------------------------------------------------------

/** History page size: `?page_size=N` (1..200), else the server's default page. */
const PAGE_SIZE = (() => {
  const asked = Number(new URLSearchParams(location.search).get('page_size'));
  return Number.isInteger(asked) && asked >= 1 && asked <= 200 ? asked : null;
})();
const BACKOFF_START_MS = 500; // protocol.md §6: start at 0.5 s,
const BACKOFF_MAX_MS = 30_000; // double up to 30 s,
const STABLE_AFTER_MS = 10_000; // and reset once a connection has lasted this long.
const TYPING_EVERY_MS = 2_000; // send `typing` at most this often while the user types;
const TYPING_SHOWN_MS = 4_000; // there is no "stopped typing" event, so hide it after this.
const TOKEN_MARGIN_S = 60; // get a new token this long before the old one expires.
const SESSION_KEY = 'chat-demo-session';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ---- State -----------------------------------------------------------------------------------

/** Who is signed in: `{userId, token, exp, dev}`; `dev` tokens can be renewed by the page. */
let session = null;
/** chat_id → chat; see `ensureChat` for the fields. */
const chats = new Map();
/** Sent but not acknowledged, client_msg_id → `{clientMsgId, chatId, kind, content, failed}`. */
const outbox = new Map();
let activeChatId = null;
/** The socket and its reconnect bookkeeping. */
const link = {
  ws: null,
  ready: false, // `ready` received on `ws`
  connecting: false, // `connect` is between its checks and `new WebSocket`
  everReady: false, // some socket of this session was ready: the next `ready` is a reconnect
  checkToken: false, // the last socket closed before `ready`: maybe refused with 401
  attempt: 0,
  retryTimer: 0,
  stableTimer: 0,
};
let lastTypingSent = 0;

const $ = (id) => document.getElementById(id);

// ---- Small helpers ---------------------------------------------------------------------------

/** A random UUIDv4. `crypto.randomUUID` exists only on secure origins; this works on plain http. */
function uuidv4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A message_id is a UUIDv7 whose first 48 bits are the message's timestamp in milliseconds, and
 * the server orders a chat by (timestamp, message_id). So comparing the lowercase ids as strings
 * *is* chat order, and the id alone gives the time.
 */
const compareIds = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const idMillis = (id) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
const shortId = (id) => id.slice(0, 8);

function jwtClaims(token) {
  const part = token.split('.')[1] ?? '';
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  return JSON.parse(atob(base64));
}

function showAlert(text) {
  const alert = $('alert');
  alert.textContent = text;
  alert.hidden = !text;
}

function setStatus(state, text) {
  const status = $('connection');
  status.dataset.state = state;
  status.textContent = text;
}

/** The server's error body, as an exception: `{status, code, message}`. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A REST call with the bearer token; JSON in and out. Retries once with a fresh dev token on 401. */
async function api(method, path, body, retried = false) {
  const headers = { Accept: 'application/json' };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  if (response.status === 401 && session && !retried && (await renewToken())) {
    return api(method, path, body, true);
  }
  throw new ApiError(response.status, data?.error?.code ?? `http_${response.status}`,
    data?.error?.message ?? response.statusText);
}

// ---- Sign-in ---------------------------------------------------------------------------------

/** POST dev/token: exists only where the server allows development secrets (not on `cluster`). */
async function devToken(userId) {
  try {
    const { token } = await api('POST', 'dev/token', { user_id: userId });
    return token;
  } catch (error) {
    if (error.status === 404) {
      throw new Error('This server issues no development tokens (production profile): ' +
        'sign in with an access token instead.');
    }
    throw error;
  }
}

function startSession(token, dev) {
  let claims;
  try {
    claims = jwtClaims(token);
  } catch {
    throw new Error('That is not an access token (a JWT).');
  }
  if (!UUID.test(claims.sub ?? '')) throw new Error('The token names no user id.');
  session = { userId: claims.sub.toLowerCase(), token, exp: claims.exp ?? 0, dev };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

/** True when the session has a token that stays valid for a while (renewing a dev token). */
async function renewToken() {
  if (!session?.dev) return false;
  try {
    startSession(await devToken(session.userId), true);
    return true;
  } catch (error) {
    showAlert(`Could not renew the access token: ${error.message}`);
    return false;
  }
}

async function freshToken() {
  if (session.exp - Date.now() / 1000 > TOKEN_MARGIN_S) return true;
  if (await renewToken()) return true;
  signOut('Your access token expired: sign in again.');
  return false;
}

async function signIn(makeToken) {
  showAlert('');
  try {
    const [token, dev] = await makeToken();
    startSession(token, dev);
  } catch (error) {
    showAlert(error.message);
    return;
  }
  enterChatView();
}

function enterChatView() {
  $('sign-in-view').hidden = true;
  $('chat-view').hidden = false;
  $('whoami').hidden = false;
  $('my-id').value = session.userId;
  document.title = `Chat demo · ${shortId(session.userId)}`;
  link.everReady = false;
  refreshChatList();
  connect();
  $('chats-heading').focus();
}

function signOut(reason = '') {
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  dropSocket();
  clearTimeout(link.retryTimer);
  chats.clear();
  outbox.clear();
  activeChatId = null;
  $('chat-list').replaceChildren();
  $('messages').replaceChildren();
  $('chat-view').hidden = true;
  $('whoami').hidden = true;
  $('sign-in-view').hidden = false;
  document.title = 'Chat demo · message-service';
  setStatus('signed-out', 'Signed out');
  renderConversation();
  showAlert(reason);
}

// ---- The WebSocket ---------------------------------------------------------------------------

/** ws:// or wss:// to `ws` next to this page, whatever prefix a proxy put in front of it. */
function socketUrl() {
  const url = new URL('ws', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  return url.href;
}

async function connect() {
  clearTimeout(link.retryTimer);
  if (!session || link.ws || link.connecting) return;
  if (!navigator.onLine) {
    // Reconnecting now would only fail (and log errors); the `online` event brings us back.
    setStatus('offline', 'Offline: waiting for the network');
    return;
  }
  link.connecting = true;
  try {
    if (!(await tokenUsable())) return;
  } finally {
    link.connecting = false;
  }
  if (!session || link.ws || !navigator.onLine) return;
  setStatus('connecting', 'Connecting…');
  // Browsers cannot set headers on a WebSocket: the token travels as a second subprotocol next
  // to `chat.v1`, which the server picks (a query `?access_token=` would land in access logs).
  const ws = new WebSocket(socketUrl(), ['chat.v1', `bearer.${session.token}`]);
  link.ws = ws;
  link.ready = false;
  ws.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onFrame(frame);
  };
  ws.onclose = (event) => onClose(ws, event);
}

/**
 * Whether to open a socket with the current token. Browsers do not show a refused upgrade's
 * status (401 looks like any failure), so after a socket closed before `ready` a REST call
 * checks the token: on 401, `api` renews a dev token, and any other token means signing in again.
 */
async function tokenUsable() {
  if (!(await freshToken())) return false;
  if (!link.checkToken) return true;
  link.checkToken = false;
  try {
    await api('GET', 'users/chat');
  } catch (error) {
    if (error.status === 401) {
      signOut('The server refused your access token: sign in again.');
      return false;
    }
    // Anything else (the server is down, say): let the socket try, and back off if it fails.
  }
  return true;
}

/** Forgets the socket without waiting for its close handshake. */
function dropSocket() {
  const ws = link.ws;
  link.ws = null;
  link.ready = false;
  clearTimeout(link.stableTimer);
  if (!ws) return;
  ws.onmessage = null;
  ws.onclose = null;
  if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'client closed');
  else if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000, 'client closed');
}

function onClose(ws, event) {
  if (link.ws !== ws) return;
  const wasReady = link.ready;
  link.ws = null;
  link.ready = false;
  clearTimeout(link.stableTimer);
  if (!session) return;
  if (event.code === 4001) session.exp = 0; // expired on the open socket: renew before retrying
  link.checkToken = !wasReady;
  scheduleReconnect();
}

/**
 * Exponential backoff with "equal jitter": wait between half and all of 0.5 s · 2^attempt
 * (capped at 30 s). The random half spreads out the clients that one server restart
 * disconnected at the same moment, so they do not all come back in the same instant.
 */
function scheduleReconnect() {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** link.attempt);
  const delay = ceiling / 2 + Math.random() * (ceiling / 2);
  link.attempt += 1;
  setStatus('reconnecting', `Disconnected: reconnecting in ${Math.ceil(delay / 1000)} s`);
  link.retryTimer = setTimeout(connect, delay);
}

/** Sends a frame on a ready socket; false when there is none (the caller's state covers it). */
function sendFrame(frame) {
  // A socket the server is closing stays "ready" until its close event; sending on it would
  // only log an error, and whatever matters is sent again after the reconnect.
  if (!link.ready || link.ws.readyState !== WebSocket.OPEN) return false;
  link.ws.send(JSON.stringify(frame));
  return true;
}

// The browser knows before the socket does that the network is gone (a dead TCP connection can
// look open for minutes). Drop it at once, and reconnect and sync as soon as it is back.
window.addEventListener('offline', () => {
  if (!session) return;
  dropSocket();
  clearTimeout(link.retryTimer);
  setStatus('offline', 'Offline: waiting for the network');
});
window.addEventListener('online', () => {
  if (!session) return;
  link.attempt = 0;
  connect();
});

// ---- Server frames ---------------------------------------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case 'ready': return onReady(frame);
    case 'ack': return onAck(frame);
    case 'message': return onMessages([frame.message], true);
    case 'sync_result': return onSyncResult(frame);
    case 'seen': return onSeen(frame);
    case 'typing': return onTyping(frame);
    case 'error': return onError(frame);
    default: return undefined; // Unknown frame types are ignored: the protocol may grow.
  }
}

/** Every `ready` (first connect and each reconnect) starts the catch-up of protocol.md §8.3. */
function onReady(frame) {
  link.ready = true;
  setStatus('connected', 'Connected');
  link.stableTimer = setTimeout(() => { link.attempt = 0; }, STABLE_AFTER_MS);
  if (frame.user_id !== session.userId) {
    signOut('The server names another user than the token: signed out.');
    return;
  }
  // Chats opened while we were away show up in the list; their history loads when opened.
  if (link.everReady) refreshChatList();
  link.everReady = true;
  // Sync every chat we hold messages of from its newest one; the rest load a history page.
  for (const chat of chats.values()) {
    if (chat.newestId) sendFrame({ type: 'sync', chat_id: chat.id, after_message_id: chat.newestId });
    chat.seenSent.clear(); // receipts not confirmed by a `seen` event are sent again
  }
  // Resend what was never acknowledged, with the same client_msg_id: the server stores each
  // (chat, sender, client_msg_id) once and answers a resend with the original ack.
  for (const entry of outbox.values()) if (!entry.failed) transmit(entry);
  const chat = chats.get(activeChatId);
  if (chat && !chat.historyLoaded) loadHistory(chat, false);
  markSeen();
}

function onAck(ack) {
  const entry = outbox.get(ack.client_msg_id);
  if (!entry) return; // a resend's ack for a message a sync already delivered
  outbox.delete(ack.client_msg_id);
  // The sending connection gets no `message` for its own send: build the copy from the ack.
  const chat = chats.get(ack.chat_id);
  onMessages([{
    message_id: ack.message_id,
    chat_id: ack.chat_id,
    sender_id: session.userId,
    recipient_id: chat?.peerId ?? null,
    kind: entry.kind,
    content: entry.content,
    timestamp: ack.timestamp,
    seen_at: null,
    client_msg_id: ack.client_msg_id,
  }], false);
}

/** `sync_result` is oldest first; `has_more` asks for the next batch from its last message. */
function onSyncResult(result) {
  onMessages(result.messages, true);
  const last = result.messages.at(-1);
  if (result.has_more && last) {
    sendFrame({ type: 'sync', chat_id: result.chat_id, after_message_id: last.message_id });
  }
}

function onSeen(frame) {
  const message = chats.get(frame.chat_id)?.messages.get(frame.message_id);
  if (!message) return;
  message.seen_at = frame.seen_at;
  if (frame.chat_id === activeChatId) renderMessages();
}

function onTyping(frame) {
  const chat = chats.get(frame.chat_id);
  if (!chat || frame.user_id === session.userId) return;
  chat.typingUntil = Date.now() + TYPING_SHOWN_MS;
  clearTimeout(chat.typingTimer);
  chat.typingTimer = setTimeout(() => renderTyping(chat), TYPING_SHOWN_MS + 50);
  renderTyping(chat);
}

function onError(frame) {
  const entry = frame.ref ? outbox.get(frame.ref) : null;
  if (entry) {
    if (frame.code === 'unavailable' || frame.code === 'internal') {
      // Maybe stored after all: resending with the same client_msg_id is always safe.
      setTimeout(() => { if (outbox.get(entry.clientMsgId) === entry) transmit(entry); }, 2_000);
    } else {
      entry.failed = true;
      entry.error = frame.message;
      if (entry.chatId === activeChatId) renderMessages();
    }
    return;
  }
  showAlert(`Server error (${frame.code}): ${frame.message}`);
}

// ---- Messages --------------------------------------------------------------------------------

/**
 * A chat: its messages keyed by message_id (the dedup key), the newest message_id (where a
 * `sync` continues), the history cursor, and view state.
 */
function ensureChat(chatId, peerId, createdAt = null) {
  let chat = chats.get(chatId);
  if (!chat) {
    chat = {
      id: chatId,
      peerId,
      createdAt,
      messages: new Map(),
      newestId: null,
      cursor: null,
      hasMore: false,
      historyLoaded: false,
      loadingHistory: false,
      seenSent: new Set(),
      unread: 0,
      typingUntil: 0,
      typingTimer: 0,
    };
    chats.set(chatId, chat);
  } else if (createdAt && !chat.createdAt) {
    chat.createdAt = createdAt; // first seen through a message, now listed
  }
  return chat;
}

/**
 * Stores messages from any source and re-renders what changed. A copy of a known message only
 * contributes its `seen_at`. `live` marks messages that just arrived (announced, counted as
 * unread) as opposed to history pages; `view` is passed on to `renderMessages`.
 */
function onMessages(messages, live, view = {}) {
  const touched = new Set();
  for (const message of messages) {
    const mine = message.sender_id === session.userId;
    const chat = ensureChat(message.chat_id, mine ? message.recipient_id : message.sender_id);
    touched.add(chat);
    const known = chat.messages.get(message.message_id);
    if (known) {
      if (message.seen_at && !known.seen_at) known.seen_at = message.seen_at;
      continue;
    }
    chat.messages.set(message.message_id, message);
    if (!chat.newestId || compareIds(message.message_id, chat.newestId) > 0) {
      chat.newestId = message.message_id;
    }
    // Our own message came back (sync, or another device) before the ack of a resend: it is
    // stored, so it leaves the outbox, and the late ack will find nothing to do.
    const pending = mine ? outbox.get(message.client_msg_id) : null;
    if (pending && pending.chatId === message.chat_id) outbox.delete(message.client_msg_id);
    if (live && !mine) {
      if (chat.id !== activeChatId || document.visibilityState !== 'visible') chat.unread += 1;
      chat.typingUntil = 0; // the message is what they were typing
      renderTyping(chat);
      announce(`New message from ${shortId(chat.peerId)}: ${message.content}`);
    }
  }
  renderChatList();
  if (touched.has(chats.get(activeChatId))) {
    renderMessages(view);
    markSeen();
  }
}

function announce(text) {
  $('announcer').textContent = text;
}

function transmit(entry) {
  sendFrame({
    type: 'send',
    chat_id: entry.chatId,
    client_msg_id: entry.clientMsgId,
    kind: entry.kind,
    content: entry.content,
  });
}

/** Puts the message in the outbox *before* sending, so a lost connection cannot lose it. */
function sendMessage(content) {
  const chat = chats.get(activeChatId);
  if (!chat) return;
  const entry = { clientMsgId: uuidv4(), chatId: chat.id, kind: 'text', content, failed: false };
  outbox.set(entry.clientMsgId, entry);
  transmit(entry); // when offline, the next `ready` sends it
  renderMessages({ toBottom: true });
}

/** Sends `seen` once per received message of the open chat while the page is visible. */
function markSeen() {
  const chat = chats.get(activeChatId);
  if (!chat || !link.ready || document.visibilityState !== 'visible') return;
  chat.unread = 0;
  for (const message of chat.messages.values()) {
    if (message.sender_id === session.userId || message.seen_at) continue;
    if (chat.seenSent.has(message.message_id)) continue;
    chat.seenSent.add(message.message_id);
    sendFrame({ type: 'seen', chat_id: chat.id, message_id: message.message_id, ref: `seen:${message.message_id}` });
  }
  renderChatList();
}

// ---- Chats and history -----------------------------------------------------------------------

async function refreshChatList() {
  try {
    const list = await api('GET', `users/chat?user_id=${encodeURIComponent(session.userId)}`);
    for (const summary of list.chats) ensureChat(summary.chat_id, summary.peer_id, summary.created_at);
    renderChatList();
  } catch (error) {
    if (session) showAlert(`Could not load your chats: ${error.message}`);
  }
}

async function openChatWith(peerId) {
  const { chat_id: chatId, peer_id: peer, created_at: createdAt } =
    await api('POST', 'chats', { peer_id: peerId });
  ensureChat(chatId, peer, createdAt);
  selectChat(chatId);
}

function selectChat(chatId) {
  activeChatId = chatId;
  const chat = chats.get(chatId);
  chat.unread = 0;
  $('chat-view').dataset.pane = 'conversation';
  $('messages').replaceChildren();
  renderConversation();
  renderMessages({ toBottom: true });
  if (!chat.historyLoaded) loadHistory(chat, false);
  markSeen();
  $('composer-input').focus();
}

/**
 * GET users/chat/{chat_id}: newest first. The first page starts at the newest message; each
 * "Load more" passes the previous page's `next_cursor`. `has_more: true` with no cursor means
 * the server could not keep one right now: the page is complete, but paging must wait.
 */
async function loadHistory(chat, older) {
  if (chat.loadingHistory) return;
  chat.loadingHistory = true;
  renderHistoryBar();
  const query = new URLSearchParams();
  if (PAGE_SIZE) query.set('limit', String(PAGE_SIZE));
  if (older && chat.cursor) query.set('cursor', chat.cursor);
  try {
    const page = await api('GET', `users/chat/${chat.id}?${query}`);
    chat.cursor = page.next_cursor;
    chat.hasMore = page.has_more;
    chat.historyLoaded = true;
    chat.loadingHistory = false;
    onMessages(page.messages, false, { keepOffset: older, toBottom: !older });
  } catch (error) {
    chat.loadingHistory = false;
    if (error.code === 'invalid_cursor') {
      // Cursors live 15 minutes: start again from the first page; duplicates collapse by id.
      chat.cursor = null;
      chat.historyLoaded = false;
      loadHistory(chat, false);
      return;
    }
    showAlert(`Could not load the history: ${error.message}`);
  }
  renderHistoryBar();
}

// ---- Rendering -------------------------------------------------------------------------------

function renderChatList() {
  const list = $('chat-list');
  // Most recent activity first; chats without messages by creation. Timestamps are parsed:
  // their fraction has a varying number of digits, so they do not sort as strings.
  const created = (chat) => Date.parse(chat.createdAt ?? '') || 0;
  const ordered = [...chats.values()].sort((a, b) =>
    compareIds(b.newestId ?? '', a.newestId ?? '') || created(b) - created(a));
  const items = ordered.map((chat) => {
    let item = list.querySelector(`li[data-chat-id="${chat.id}"]`);
    if (!item) {
      item = document.createElement('li');
      item.dataset.chatId = chat.id;
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'chat-item';
      button.dataset.peerId = chat.peerId;
      button.addEventListener('click', () => selectChat(chat.id));
      button.append(span('peer mono'), span('preview'), span('badge'));
      item.append(button);
    }
    const button = item.firstElementChild;
    const last = chat.newestId ? chat.messages.get(chat.newestId) : null;
    const typing = chat.typingUntil > Date.now();
    button.querySelector('.peer').textContent = shortId(chat.peerId);
    button.querySelector('.preview').textContent = typing ? 'typing…' : last?.content ?? '';
    const badge = button.querySelector('.badge');
    badge.textContent = chat.unread ? String(chat.unread) : '';
    badge.hidden = !chat.unread;
    button.setAttribute('aria-label', `Chat with ${chat.peerId}` +
      (chat.unread ? `, ${chat.unread} unread` : '') + (typing ? ', typing' : ''));
    if (chat.id === activeChatId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
    return item;
  });
  reorder(list, items);
  $('no-chats').hidden = chats.size > 0;
}

function renderConversation() {
  const chat = chats.get(activeChatId);
  $('conversation-heading').textContent = chat ? `Chat with ${shortId(chat.peerId)}` : 'No chat open';
  $('peer-full-id').textContent = chat ? chat.peerId : '';
  $('composer-input').disabled = !chat;
  $('send').disabled = !chat;
  renderHistoryBar();
  if (chat) renderTyping(chat);
  else $('typing').textContent = '';
  renderChatList();
}

function renderTyping(chat) {
  if (chat.id === activeChatId) {
    $('typing').textContent = chat.typingUntil > Date.now() ? `${shortId(chat.peerId)} is typing…` : '';
  }
  renderChatList();
}

function renderHistoryBar() {
  const chat = chats.get(activeChatId);
  const button = $('load-more');
  const note = $('history-note');
  button.hidden = !chat?.historyLoaded || !chat.hasMore || !chat.cursor;
  button.disabled = Boolean(chat?.loadingHistory);
  button.textContent = chat?.loadingHistory ? 'Loading…' : 'Load more';
  if (!chat) note.textContent = '';
  else if (!chat.historyLoaded) note.textContent = chat.loadingHistory ? 'Loading history…' : '';
  else if (chat.hasMore && !chat.cursor) note.textContent = 'Older messages are unavailable right now.';
  else if (!chat.hasMore) note.textContent = 'This is the start of the conversation.';
  else note.textContent = '';
}

/** The messages of the open chat, oldest first, then the unacknowledged ones in send order. */
function renderMessages({ keepOffset = false, toBottom = false } = {}) {
  const chat = chats.get(activeChatId);
  const list = $('messages');
  const scroller = $('scroller');
  if (!chat) {
    list.replaceChildren();
    return;
  }
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const heightBefore = scroller.scrollHeight;
  const stored = [...chat.messages.values()].sort((a, b) => compareIds(a.message_id, b.message_id));
  const pending = [...outbox.values()].filter((entry) => entry.chatId === chat.id);
  const items = [
    ...stored.map((message) => messageItem(list, {
      mine: message.sender_id === session.userId,
      clientMsgId: message.client_msg_id,
      senderId: message.sender_id,
      messageId: message.message_id,
      content: message.content,
      time: new Date(idMillis(message.message_id)),
      state: message.seen_at ? 'seen' : 'sent',
      seenAt: message.seen_at,
    })),
    ...pending.map((entry) => messageItem(list, {
      mine: true,
      clientMsgId: entry.clientMsgId,
      senderId: session.userId,
      messageId: null,
      content: entry.content,
      time: null,
      state: entry.failed ? 'failed' : 'sending',
      error: entry.error,
    })),
  ];
  reorder(list, items);
  renderHistoryBar();
  if (keepOffset) scroller.scrollTop += scroller.scrollHeight - heightBefore;
  else if (toBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;
}

const STATE_TEXT = { sending: 'Sending…', sent: 'Sent', seen: 'Seen', failed: 'Not sent' };

/**
 * One list item per message, keyed by sender and client_msg_id rather than message_id, so the
 * item of an unacknowledged message is the same element once its ack gives it an id.
 */
function messageItem(list, view) {
  const key = `${view.senderId}/${view.clientMsgId}`;
  let item = list.querySelector(`li[data-key="${CSS.escape(key)}"]`);
  if (!item) {
    item = document.createElement('li');
    item.dataset.key = key;
    item.dataset.clientMsgId = view.clientMsgId;
    item.className = `message ${view.mine ? 'mine' : 'theirs'}`;
    const who = span('visually-hidden who');
    const content = document.createElement('p');
    content.className = 'content';
    const meta = document.createElement('p');
    meta.className = 'meta';
    meta.append(document.createElement('time'), span('state'));
    item.append(who, content, meta);
  }
  item.querySelector('.who').textContent = view.mine ? 'You: ' : `${shortId(view.senderId)}: `;
  item.querySelector('.content').textContent = view.content;
  if (view.messageId) item.dataset.messageId = view.messageId;
  const time = item.querySelector('time');
  if (view.time) {
    time.dateTime = view.time.toISOString();
    time.textContent = view.time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  if (view.mine) {
    item.dataset.state = view.state;
    const state = item.querySelector('.state');
    state.textContent = view.state === 'failed' ? `Not sent: ${view.error}` : STATE_TEXT[view.state];
    state.title = view.seenAt ? `Seen ${new Date(view.seenAt).toLocaleString()}` : '';
  }
  return item;
}

function span(className) {
  const element = document.createElement('span');
  element.className = className;
  return element;
}

/** Makes `parent`'s children exactly `items`, in order, moving only what is out of place. */
function reorder(parent, items) {
  let cursor = parent.firstElementChild;
  for (const item of items) {
    if (item === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(item, cursor);
  }
  while (cursor) {
    const next = cursor.nextElementSibling;
    cursor.remove();
    cursor = next;
  }
}

// ---- Wiring the page -------------------------------------------------------------------------

function normalizedUuid(input) {
  const value = input.value.trim().toLowerCase();
  if (!UUID.test(value)) {
    showAlert(`"${input.value.trim()}" is not a UUID (like 3f2a9c1e-8b4d-4e6f-a1c2-5d7e9f0b1a2c).`);
    input.focus();
    return null;
  }
  return value;
}

$('random-id').addEventListener('click', () => {
  $('user-id').value = uuidv4();
  $('user-id').focus();
});

$('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const userId = normalizedUuid($('user-id'));
  if (userId) signIn(async () => [await devToken(userId), true]);
});

$('token-sign-in').addEventListener('click', () => {
  const token = $('access-token').value.trim();
  signIn(async () => [token, false]);
});

$('sign-out').addEventListener('click', () => signOut());

$('open-chat-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const peerId = normalizedUuid($('peer-id'));
  if (!peerId) return;
  if (peerId === session.userId) {
    showAlert('That is your own id: chat with another user.');
    return;
  }
  showAlert('');
  try {
    await openChatWith(peerId);
    $('peer-id').value = '';
  } catch (error) {
    showAlert(`Could not open the chat: ${error.message}`);
  }
});

$('back').addEventListener('click', () => {
  $('chat-view').dataset.pane = 'list';
  $('chats-heading').focus();
});

$('load-more').addEventListener('click', () => {
  const chat = chats.get(activeChatId);
  if (chat) loadHistory(chat, true);
});

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('composer-input');
  const content = input.value;
  if (!content.trim()) return; // the server refuses empty content (empty_content)
  input.value = '';
  lastTypingSent = 0;
  sendMessage(content);
});

$('composer-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('composer').requestSubmit();
  }
});

$('composer-input').addEventListener('input', () => {
  const now = Date.now();
  if (!activeChatId || now - lastTypingSent < TYPING_EVERY_MS) return;
  if (sendFrame({ type: 'typing', chat_id: activeChatId })) lastTypingSent = now;
});

document.addEventListener('visibilitychange', markSeen);

// A reload keeps the session of this tab (sessionStorage is per tab).
try {
  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
  if (saved?.token && UUID.test(saved.userId ?? '')) {
    session = saved;
    enterChatView();
  }
} catch {
  sessionStorage.removeItem(SESSION_KEY);
}
