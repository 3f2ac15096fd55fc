import type { Resources } from '../lifecycle/resources.js';
import type { Service } from '../lifecycle/service.js';
import { createApp } from '../ingress/app.js';
import { IngressService } from '../ingress/ingress-service.js';

export const ROLES = ['ingress', 'projector', 'presence', 'router', 'all'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);

/** The services one role runs; `all` runs every role in one process. */
export function servicesFor(role: Role, resources: Resources): Service[] {
  const { config, log } = resources;
  const ingress = () => [new IngressService(createApp(resources), { host: config.http.host, port: config.http.port, log })];
  switch (role) {
    case 'ingress':
      return ingress();
    case 'projector':
    case 'presence':
    case 'router':
      return [];
    case 'all':
      return [...ingress()];
  }
}
