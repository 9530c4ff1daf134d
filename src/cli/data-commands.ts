// domain / credential / apikey / suppression: thin translations between argv
// and the same services the HTTP API uses.
import type { Command } from 'commander';
import { createApiKey, parseScopes, publicApiKey } from '../auth/api-keys.js';
import { addCredential, publicCredential } from '../auth/credentials.js';
import type { DnsRecord } from '../domains/records.js';
import type { VerifyResult } from '../domains/verify.js';
import { GatewayError } from '../errors.js';
import { parseAddress, normaliseDomain } from '../util/address.js';
import { positiveInt, withStore } from './context.js';
import { printJson, printLines, table } from './output.js';

interface JsonFlag {
  json?: boolean;
}

function recordLines(records: DnsRecord[]): string[] {
  const lines: string[] = [];
  for (const r of records) {
    lines.push(`  ${r.type.padEnd(5)} ${r.name}`, `        ${r.value}`);
    if (r.note) lines.push(`        (${r.note})`);
  }
  return lines;
}

function verifyLines(v: VerifyResult): string[] {
  const lines = [`${v.domain}: ${v.verified ? 'verified' : 'NOT verified'} (SPF and DKIM must pass; MX, DMARC and tracking are advisory)`];
  for (const r of v.records) {
    lines.push(`  ${r.status.toUpperCase().padEnd(7)} ${r.type.padEnd(5)} ${r.name}`);
    lines.push(`          expected: ${r.expected}`);
    lines.push(`          found:    ${r.found.length ? r.found.join(' | ') : '(nothing)'}`);
    if (r.error) lines.push(`          lookup error: ${r.error}`);
    if (r.detail) lines.push(`          ${r.detail}`);
  }
  return lines;
}

function domainCommands(program: Command): void {
  const domain = program.command('domain').description('sending domains, their DKIM keys and DNS records');

  domain
    .command('add <name>')
    .description('add a sending domain with a fresh DKIM key and print the DNS records to publish')
    .option('--selector <selector>', 'DKIM selector (default rg1)')
    .option('--algorithm <alg>', 'rsa (default) or ed25519 (adds an RSA signature alongside)')
    .option('--tracking-host <host>', 'CNAME host for tracking links, e.g. track.example.com')
    .option('--json', 'print JSON')
    .action((name: string, o: JsonFlag & { selector?: string; algorithm?: string; trackingHost?: string }) =>
      withStore(program, ({ domains }) => {
        const res = domains.add(name, { selector: o.selector, algorithm: o.algorithm as 'rsa' | 'ed25519' | undefined, trackingHost: o.trackingHost });
        if (o.json) return printJson(res);
        printLines([
          `Added ${res.domain}. Publish these DNS records, then run: relaygate domain verify ${res.domain}`,
          ...recordLines(res.records),
          '',
          'If the domain already has an SPF record, merge the mechanisms into that one record: a domain may publish only one v=spf1 TXT.',
        ]);
      }),
    );

  domain
    .command('list')
    .description('list domains and their verification state')
    .option('--json', 'print JSON')
    .action((o: JsonFlag) =>
      withStore(program, ({ domains }) => {
        const list = domains.list();
        if (o.json) return printJson({ data: list });
        printLines(
          table(
            ['DOMAIN', 'VERIFIED', 'SELECTORS', 'TRACKING HOST'],
            list.map((d) => [d.domain, d.verified ? 'yes' : 'no', d.dkim.map((k) => `${k.selector}(${k.status})`).join(','), d.tracking_host]),
          ),
        );
      }),
    );

  domain
    .command('show <name>')
    .description('show a domain with the DNS records to publish')
    .option('--json', 'print JSON')
    .action((name: string, o: JsonFlag) =>
      withStore(program, ({ domains }) => {
        const d = domains.get(name);
        if (o.json) return printJson(d);
        printLines([`${d.domain}: ${d.verified ? 'verified' : 'not verified'}`, ...recordLines(d.records)]);
      }),
    );

  domain
    .command('verify <name>')
    .description('look up the published records through dns.servers and check them')
    .option('--json', 'print JSON')
    .action((name: string, o: JsonFlag) =>
      withStore(program, async ({ domains }) => {
        const v = await domains.verify(name);
        if (o.json) return printJson(v);
        printLines(verifyLines(v));
      }),
    );

  domain
    .command('set <name>')
    .description('change domain settings')
    .option('--tracking-host <host>', 'CNAME host for tracking links ("" to remove)')
    .option('--track <list>', 'tracking for this domain\'s mail: none, a list of opens,clicks,unsubscribe, or default (config)')
    .option('--json', 'print JSON')
    .action((name: string, o: JsonFlag & { trackingHost?: string; track?: string }) =>
      withStore(program, ({ domains }) => {
        if (o.trackingHost === undefined && o.track === undefined) {
          throw new GatewayError('nothing_to_set', 'nothing to change: give --tracking-host HOST and/or --track LIST');
        }
        let d = o.track !== undefined ? domains.setTrack(name, o.track) : domains.get(name);
        if (o.trackingHost !== undefined) d = domains.setTrackingHost(name, o.trackingHost || null);
        if (o.json) return printJson(d);
        printLines([
          `${d.domain}: tracking ${d.track ?? 'from config'}, tracking host ${d.tracking_host ?? '(none)'}`,
          ...recordLines(d.records),
        ]);
      }),
    );

  domain
    .command('rotate-key <name>')
    .description('create a new DKIM selector; signing switches once its record verifies')
    .option('--json', 'print JSON')
    .action((name: string, o: JsonFlag) =>
      withStore(program, ({ domains }) => {
        const r = domains.rotateKey(name);
        if (o.json) return printJson(r);
        printLines([`New selector ${r.selector} for ${r.domain} (pending).`, ...recordLines([r.record]), r.message]);
      }),
    );

  domain
    .command('rm <name>')
    .description('remove a domain, its keys and credentials')
    .option('--json', 'print JSON')
    .action((name: string, o: JsonFlag) =>
      withStore(program, ({ domains }) => {
        domains.remove(name);
        if (o.json) return printJson({ domain: name.toLowerCase(), deleted: true });
        printLines([`Removed ${name}.`]);
      }),
    );
}

function credentialCommands(program: Command): void {
  const credential = program.command('credential').description('SMTP credentials (password or IP network)');

  credential
    .command('add <domain>')
    .description('create a password credential (shown once) or, with --ip, an IP credential')
    .option('--name <name>', 'credential name, used as the user part of the username')
    .option('--ip <cidr>', 'network allowed to send for the domain without AUTH, e.g. 10.0.0.0/24')
    .option('--rate <n>', 'messages per minute (default: unlimited)', positiveInt('--rate'))
    .option('--json', 'print JSON')
    .action((domainName: string, o: JsonFlag & { name?: string; ip?: string; rate?: number }) =>
      withStore(program, async ({ store }) => {
        const c = await addCredential(store, domainName, { name: o.name, ip: o.ip, rate: o.rate });
        if (o.json) return printJson(c);
        if (c.kind === 'ip') return printLines([`IP credential ${c.id}: ${c.ip} may send for ${c.domain} without AUTH.`]);
        printLines([`username: ${c.username}`, `password: ${c.password}`, '', 'The password is shown only now; it is stored as a one-way hash.']);
      }),
    );

  credential
    .command('list')
    .description('list credentials')
    .option('--json', 'print JSON')
    .action((o: JsonFlag) =>
      withStore(program, ({ store }) => {
        const list = store.tenants.credentials().map(publicCredential);
        if (o.json) return printJson({ data: list });
        printLines(table(['ID', 'DOMAIN', 'KIND', 'USERNAME / NETWORK', 'RATE/MIN'], list.map((c) => [c.id, c.domain, c.kind, c.username ?? c.ip, c.rate_per_minute])));
      }),
    );

  credential
    .command('rm <id>')
    .description('remove a credential')
    .option('--json', 'print JSON')
    .action((id: string, o: JsonFlag) =>
      withStore(program, ({ store }) => {
        if (!store.tenants.removeCredential(id)) throw new GatewayError('credential_not_found', `no credential ${id}`, { http: 404 });
        if (o.json) return printJson({ id, deleted: true });
        printLines([`Removed ${id}.`]);
      }),
    );
}

function apiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('HTTP API keys');

  apikey
    .command('create')
    .description('create an API key (shown once)')
    .requiredOption('--name <name>', 'what the key is for')
    .option('--scopes <list>', 'comma list of send, read, admin', 'send,read')
    .option('--json', 'print JSON')
    .action((o: JsonFlag & { name: string; scopes: string }) =>
      withStore(program, ({ store }) => {
        const k = createApiKey(store, o.name, parseScopes(o.scopes));
        if (o.json) return printJson(k);
        printLines([`key: ${k.key}`, `id: ${k.id}  scopes: ${k.scopes.join(',')}`, '', 'The key is shown only now; it is stored as a hash.']);
      }),
    );

  apikey
    .command('list')
    .description('list API keys (never the keys themselves)')
    .option('--json', 'print JSON')
    .action((o: JsonFlag) =>
      withStore(program, ({ store }) => {
        const list = store.tenants.apiKeys().map(publicApiKey);
        if (o.json) return printJson({ data: list });
        printLines(table(['ID', 'NAME', 'PREFIX', 'SCOPES', 'REVOKED'], list.map((k) => [k.id, k.name, k.prefix, k.scopes.join(','), k.revoked_at])));
      }),
    );

  apikey
    .command('revoke <id>')
    .description('revoke an API key')
    .option('--json', 'print JSON')
    .action((id: string, o: JsonFlag) =>
      withStore(program, ({ store }) => {
        if (!store.tenants.revokeApiKey(id)) throw new GatewayError('api_key_not_found', `no active API key ${id}`, { http: 404 });
        if (o.json) return printJson({ id, revoked: true });
        printLines([`Revoked ${id}.`]);
      }),
    );
}

function suppressionCommands(program: Command): void {
  const suppression = program.command('suppression').description('addresses a domain will not send to');
  const email = (v: string) => {
    const a = parseAddress(v);
    if (!a) throw new GatewayError('invalid_email', `"${v}" is not a valid email address`);
    return a.address;
  };
  const domainArg = (v: string) => {
    const d = normaliseDomain(v);
    if (!d) throw new GatewayError('invalid_domain', `"${v}" is not a valid domain name`);
    return d;
  };

  suppression
    .command('list')
    .option('--domain <domain>', 'only this sending domain')
    .option('--json', 'print JSON')
    .action((o: JsonFlag & { domain?: string }) =>
      withStore(program, ({ store }) => {
        const { rows, total } = store.tenants.suppressions({ domain: o.domain ? domainArg(o.domain) : null, limit: 100_000, offset: 0 });
        const data = rows.map((r) => ({ email: r.email, domain: r.domain, reason: r.reason, created_at: new Date(r.created_at).toISOString() }));
        if (o.json) return printJson({ data, total });
        printLines(table(['EMAIL', 'DOMAIN', 'REASON', 'SINCE'], data.map((r) => [r.email, r.domain, r.reason, r.created_at])));
      }),
    );

  suppression
    .command('add <email>')
    .requiredOption('--domain <domain>', 'sending domain whose list the address joins')
    .option('--json', 'print JSON')
    .action((addr: string, o: JsonFlag & { domain: string }) =>
      withStore(program, ({ store }) => {
        const d = domainArg(o.domain);
        if (!store.tenants.domain(d)) throw new GatewayError('domain_not_found', `domain ${d} is not configured`, { http: 404 });
        const created = store.tenants.suppress(d, email(addr), 'manual');
        if (o.json) return printJson({ email: email(addr), domain: d, reason: 'manual', created });
        printLines([created ? `Suppressed ${email(addr)} for ${d}.` : `${email(addr)} was already suppressed for ${d}.`]);
      }),
    );

  suppression
    .command('rm <email>')
    .option('--domain <domain>', 'only this sending domain (default: all)')
    .option('--json', 'print JSON')
    .action((addr: string, o: JsonFlag & { domain?: string }) =>
      withStore(program, ({ store }) => {
        const n = store.tenants.unsuppress(email(addr), o.domain ? domainArg(o.domain) : null);
        if (n === 0) throw new GatewayError('suppression_not_found', `${email(addr)} is not suppressed`, { http: 404 });
        if (o.json) return printJson({ email: email(addr), deleted: n });
        printLines([`Removed ${n} suppression entr${n === 1 ? 'y' : 'ies'} for ${email(addr)}.`]);
      }),
    );
}

export function registerDataCommands(program: Command): void {
  domainCommands(program);
  credentialCommands(program);
  apiKeyCommands(program);
  suppressionCommands(program);
}
