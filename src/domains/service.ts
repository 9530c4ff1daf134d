// Domain onboarding used by both the CLI and the HTTP API: create a domain
// with its DKIM key(s), describe the DNS records to publish, verify them
// live, and rotate keys without a window where mail goes out unverifiable.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { generateDkimKey, type DkimAlgorithm } from '../dkim/keys.js';
import { GatewayError } from '../errors.js';
import { parseTrack } from '../pipeline/control-headers.js';
import type { Store } from '../store/index.js';
import type { DkimKeyRow, DomainRow } from '../store/tenants.js';
import { normaliseDomain } from '../util/address.js';
import { recordsFor, type DnsRecord, type DomainDnsInput } from './records.js';
import { verifyDomain, type VerifyResult } from './verify.js';

export interface DomainServiceDeps {
  config: Config;
  store: Store;
  logger?: Logger;
  clock?: () => number;
}

export interface AddDomainOptions {
  selector?: string;
  algorithm?: DkimAlgorithm;
  trackingHost?: string | null;
}

/** How long a replaced selector must stay published: long enough for mail in flight and in retry queues. */
export const ROTATION_GRACE_MS = 7 * 86_400_000;

const SELECTOR_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

const bad = (code: string, message: string) => new GatewayError(code, message, { http: 400, smtp: 501 });

export function createDomainService(deps: DomainServiceDeps) {
  const { config, store } = deps;
  const now = deps.clock ?? Date.now;
  const trackingTarget = new URL(config.http.publicUrl).host;

  function requireDomain(name: string): DomainRow {
    const d = store.tenants.domain(name.trim().toLowerCase().replace(/\.$/, ''));
    if (!d) throw new GatewayError('domain_not_found', `domain ${name} is not configured`, { http: 404, smtp: 550 });
    return d;
  }

  function dnsInput(d: DomainRow, keys: DkimKeyRow[]): DomainDnsInput {
    return {
      domain: d.name,
      keys: keys.map((k) => ({ selector: k.selector, algorithm: k.algorithm, publicKeyB64: k.public_key })),
      publicIps: config.dns.publicIps,
      spfInclude: config.dns.spfInclude ?? undefined,
      hostname: config.hostname,
      trackingHost: d.tracking_host ?? undefined,
      trackingTarget,
    };
  }

  /** Keys whose records must be published now: signing keys, ones being introduced, ones in their grace period. */
  const publishedKeys = (d: DomainRow) => store.tenants.keys(d.id).filter((k) => k.status !== 'retiring' || (k.retire_at ?? 0) > now());

  function records(d: DomainRow): DnsRecord[] {
    return recordsFor(dnsInput(d, publishedKeys(d)));
  }

  function validHost(host: string): string {
    const h = normaliseDomain(host);
    if (!h) throw bad('invalid_tracking_host', `"${host}" is not a valid host name`);
    return h;
  }

  function describe(d: DomainRow) {
    const keys = publishedKeys(d);
    return {
      domain: d.name,
      created_at: new Date(d.created_at).toISOString(),
      verified: d.verified === 1,
      verified_at: d.verified_at ? new Date(d.verified_at).toISOString() : null,
      tracking_host: d.tracking_host,
      track: d.track,
      tracking_host_verified: d.tracking_verified === 1,
      dkim: keys.map((k) => ({
        selector: k.selector,
        algorithm: k.algorithm,
        status: k.status,
        retire_at: k.retire_at ? new Date(k.retire_at).toISOString() : null,
      })),
      records: records(d),
      last_verification: d.verify_json ? (JSON.parse(d.verify_json) as VerifyResult) : null,
    };
  }

  return {
    add(nameInput: string, opts: AddDomainOptions = {}) {
      const name = normaliseDomain(nameInput.trim());
      if (!name) throw bad('invalid_domain', `"${nameInput}" is not a valid domain name`);
      if (store.tenants.domain(name)) throw new GatewayError('domain_exists', `domain ${name} already exists`, { http: 409 });
      const selector = (opts.selector ?? 'rg1').toLowerCase();
      if (!SELECTOR_RE.test(selector)) throw bad('invalid_selector', `selector "${opts.selector}" must be letters, digits and hyphens`);
      const algorithm = opts.algorithm ?? 'rsa';
      if (algorithm !== 'rsa' && algorithm !== 'ed25519') throw bad('invalid_algorithm', 'algorithm must be rsa or ed25519');
      const trackingHost = opts.trackingHost ? validHost(opts.trackingHost) : null;
      const keys = [{ selector, algorithm }];
      // Many large receivers still ignore ed25519 signatures (RFC 8463 is optional to verify),
      // so an ed25519 domain always carries an RSA signature too.
      if (algorithm === 'ed25519') keys.push({ selector: `${selector}-rsa`, algorithm: 'rsa' });
      const material = keys.map((k) => {
        const pair = generateDkimKey(k.algorithm);
        return { selector: k.selector, algorithm: k.algorithm, privateKey: pair.privateKeyPem, publicKey: pair.publicKeyB64 };
      });
      const d = store.tenants.addDomain(name, trackingHost, material, now());
      deps.logger?.info({ domain: name, selectors: keys.map((k) => k.selector) }, 'domain added');
      return { domain: d.name, records: records(d) };
    },

    get(name: string) {
      return describe(requireDomain(name));
    },

    list() {
      return store.tenants.domains().map(describe);
    },

    remove(name: string): boolean {
      const d = requireDomain(name);
      return store.tenants.removeDomain(d.name);
    },

    /** Tracking default for the domain's mail: 'none', a list of opens/clicks/unsubscribe, or null for config. */
    setTrack(name: string, track: string | null) {
      const d = requireDomain(name);
      let value: string | null = null;
      if (track !== null && track.trim().toLowerCase() !== 'default') {
        const flags = parseTrack(track, 'track');
        value = flags.size ? [...flags].join(',') : 'none';
      }
      store.tenants.setTrack(d.id, value);
      return describe(requireDomain(name));
    },

    setTrackingHost(name: string, host: string | null) {
      const d = requireDomain(name);
      store.tenants.setTrackingHost(d.id, host ? validHost(host) : null);
      return describe(requireDomain(name));
    },

    /** Live DNS check; persists the result, promotes a pending key whose record is published, logs changes. */
    async verify(name: string): Promise<VerifyResult> {
      const d = requireDomain(name);
      const keys = publishedKeys(d);
      const result = await verifyDomain(dnsInput(d, keys), { dnsServers: config.dns.servers, timeoutMs: config.dns.timeout });
      const dkimChecks = result.records.filter((r) => r.purpose === 'dkim');
      const passes = (k: DkimKeyRow) => dkimChecks[keys.indexOf(k)]?.status === 'pass';
      const spfOk = result.records.some((r) => r.purpose === 'spf' && r.status === 'pass');
      const at = now();

      // Rotation: switch signing only once the new record is visible.
      for (const k of keys.filter((k) => k.status === 'pending' && passes(k))) {
        for (const old of keys.filter((o) => o.status === 'active' && o.algorithm === k.algorithm)) {
          store.tenants.setKeyStatus(old.id, 'retiring', at + ROTATION_GRACE_MS);
          store.tenants.domainEvent(d.name, 'key_retired', { selector: old.selector, retire_at: new Date(at + ROTATION_GRACE_MS).toISOString() }, at);
        }
        store.tenants.setKeyStatus(k.id, 'active', null);
        store.tenants.domainEvent(d.name, 'key_activated', { selector: k.selector }, at);
        deps.logger?.info({ domain: d.name, selector: k.selector }, 'DKIM key activated');
      }
      const signing = store.tenants.keys(d.id).filter((k) => k.status === 'active');
      const verified = spfOk && signing.length > 0 && signing.every((k) => dkimChecks[keys.findIndex((x) => x.id === k.id)]?.status === 'pass');
      const trackingOk = result.records.some((r) => r.purpose === 'tracking' && r.status === 'pass');
      const out: VerifyResult = { ...result, verified };
      store.tenants.setVerification(d.id, verified, trackingOk, JSON.stringify(out), at);
      if (verified !== (d.verified === 1)) {
        store.tenants.domainEvent(d.name, verified ? 'verified' : 'unverified', { records: result.records.map((r) => ({ name: r.name, status: r.status })) }, at);
        deps.logger?.info({ domain: d.name, verified }, verified ? 'domain verified' : 'domain no longer verified');
      }
      return out;
    },

    /** Starts a rotation: a new pending selector whose record must be published before it signs. */
    rotateKey(name: string) {
      const d = requireDomain(name);
      const all = store.tenants.keys(d.id);
      const active = all.find((k) => k.status === 'active' && k.algorithm === 'rsa') ?? all[0];
      const algorithm: DkimAlgorithm = active?.algorithm ?? 'rsa';
      const taken = new Set(all.map((k) => k.selector));
      let n = all.length + 1;
      while (taken.has(`rg${n}`)) n++;
      const selector = `rg${n}`;
      const pair = generateDkimKey(algorithm);
      store.tenants.addKey(d.id, { selector, algorithm, privateKey: pair.privateKeyPem, publicKey: pair.publicKeyB64 }, 'pending', now());
      const record = records(requireDomain(d.name)).find((r) => r.name.startsWith(`${selector}._domainkey.`))!;
      return {
        domain: d.name,
        selector,
        record,
        replaces: active?.selector ?? null,
        grace_days: ROTATION_GRACE_MS / 86_400_000,
        message:
          `Publish ${record.name}, then run "relaygate domain verify ${d.name}". Signing switches to ${selector} once the record verifies; ` +
          `keep ${active?.selector ?? 'the old selector'} published for ${ROTATION_GRACE_MS / 86_400_000} more days after that.`,
      };
    },

    /** Re-verifies every domain (the periodic job). */
    async reverifyAll(): Promise<void> {
      for (const d of store.tenants.domains()) {
        try {
          await this.verify(d.name);
        } catch (e) {
          deps.logger?.warn({ err: e, domain: d.name }, 'periodic verification failed');
        }
      }
    },

    records,
  };
}

export type DomainService = ReturnType<typeof createDomainService>;
