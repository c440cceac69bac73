/** Small pieces every page uses: stat cards, notes, badges, blocks of JSON. */
import type { ComponentChildren } from 'preact'

export function ErrorNote({ error }: { error: Error | undefined }) {
  if (error === undefined) return null
  return (
    <p class="note error" role="alert">
      {error.message}
    </p>
  )
}

export function Note({ children, kind = 'info' }: { children: ComponentChildren; kind?: 'info' | 'ok' }) {
  return (
    <p class={`note ${kind}`} role="status">
      {children}
    </p>
  )
}

export function Stat({
  label,
  value,
  hint,
  name,
}: {
  label: string
  value: string
  hint?: string
  name: string
}) {
  return (
    <article class="stat" data-stat={name}>
      <small>{label}</small>
      <strong>{value}</strong>
      {hint === undefined ? null : <small class="hint">{hint}</small>}
    </article>
  )
}

export function Badge({
  kind,
  children,
}: {
  kind: 'ok' | 'error' | 'warn' | 'muted'
  children: ComponentChildren
}) {
  return <span class={`badge ${kind}`}>{children}</span>
}

export function Code({ text, label }: { text: string | null; label: string }) {
  if (text === null) return <p class="muted">No {label.toLowerCase()} kept.</p>
  return (
    <pre class="code" data-label={label}>
      <code>{text}</code>
    </pre>
  )
}

export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <h1>{title}</h1>
      {children}
    </div>
  )
}
