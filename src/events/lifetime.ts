import type { MessageSent } from './types.js';

/**
 * How long a message lives. The expiry is decided once, when the ingress accepts the message, and
 * written into its MessageSent, so the projector, the expiry role and a rebuild all read the same
 * instant from the log and never from the configuration of the moment.
 */

/** The lifetime of messages whose MessageSent has no expires_at: the default when expiry was introduced. */
export const LEGACY_LIFETIME_MS = 30 * 24 * 60 * 60 * 1000;

/** When a message expires, in milliseconds since the epoch. */
export const expiresAtOf = (event: Pick<MessageSent, 'occurred_at' | 'expires_at'>): number =>
  event.expires_at ?? event.occurred_at + LEGACY_LIFETIME_MS;

/** The expiry the relay gives a message accepted at `acceptedAt`: the sender's, if any, capped at the configured lifetime. */
export const messageExpiry = (acceptedAt: number, requested: number | undefined, lifetimeSeconds: number): number =>
  Math.min(requested ?? Number.POSITIVE_INFINITY, acceptedAt + lifetimeSeconds * 1000);
