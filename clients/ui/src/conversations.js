/**
 * Conversations, kept in the browser's localStorage only: nothing leaves the machine.
 * One JSON array under one key, written after every change (a few KiB per chat; images
 * are stored as data URLs, so a full storage is reported instead of failing silently).
 */

const KEY = 'pasture.ui.conversations'
const CURRENT = 'pasture.ui.current'
export const UNTITLED = 'New chat'

/** @typedef {{role: string, content: string, thinking?: string, images?: string[],
 *   tool_calls?: object[], stats?: object, stopped?: boolean, error?: string}} Message */
/** @typedef {{id: string, title: string, model: string, system: string,
 *   temperature: string, numCtx: string, numPredict?: string, think: boolean,
 *   messages: Message[],
 *   updated: number}} Conversation */

export class Conversations {
  constructor(storage = window.localStorage) {
    this.storage = storage
    /** @type {Conversation[]} */
    this.all = load(storage)
    this.currentId = storage.getItem(CURRENT) || ''
    if (!this.current()) this.currentId = this.create('').id
  }

  /** @returns {Conversation} */
  current() {
    return this.all.find((c) => c.id === this.currentId)
  }

  create(model) {
    const conversation = {
      id: crypto.randomUUID(), title: UNTITLED, model, system: '', temperature: '',
      numCtx: '', think: true, messages: [], updated: Date.now(),
    }
    this.all.unshift(conversation)
    this.select(conversation.id)
    return conversation
  }

  select(id) {
    this.currentId = id
    this.storage.setItem(CURRENT, id)
  }

  remove(id) {
    this.all = this.all.filter((c) => c.id !== id)
    if (this.currentId === id) {
      if (this.all.length) this.select(this.all[0].id)
      else this.create('')
    }
    this.save()
  }

  /** Newest first; throws a readable error when the browser's storage is full. */
  save() {
    this.all.sort((a, b) => b.updated - a.updated)
    try {
      this.storage.setItem(KEY, JSON.stringify(this.all))
    } catch (error) {
      throw new Error(`could not save the conversations (browser storage full?): ${error}`)
    }
  }

  touch(conversation) {
    conversation.updated = Date.now()
    this.save()
  }
}

function load(storage) {
  try {
    const parsed = JSON.parse(storage.getItem(KEY) || '[]')
    return Array.isArray(parsed) ? parsed.filter((c) => c && c.id && Array.isArray(c.messages)) : []
  } catch {
    return []
  }
}

/** The JSON a user downloads for one conversation. */
export function exportJSON(conversation) {
  return JSON.stringify({ ...conversation, exported_at: new Date().toISOString() }, null, 2)
}
