// relaygate configuration. Every key is optional: the defaults (shown here in
// comments) run a working gateway. Environment variables (RELAYGATE_*) override
// this file; see README.md for the full list.
import { defineConfig } from './src/config/define.js';

export default defineConfig({
  smtp: {
    // port: 2525,              // submission listener (STARTTLS + AUTH)
    // securePort: null,        // implicit-TLS port, e.g. 4650
    // maxMessageSize: 25 * 1024 * 1024,
    // maxRecipients: 100,
    // authRequiresTls: true,   // AUTH only after STARTTLS, except from loopback
  },
  http: {
    // port: 8080,
    // publicUrl: 'http://localhost:8080',  // base of tracking links in sent mail
  },
  // dataDir: 'data',           // SQLite database and generated secret
  // hostname: os.hostname(),   // HELO name and Message-ID host
  dns: {
    // servers: [],             // e.g. ['127.0.0.1:5353']; default: system resolvers
    // publicIps: [],           // your sending IPs, for the SPF record
  },
  delivery: {
    // retrySchedule: ['1m', '5m', '15m', '30m', '1h', '2h', '4h', '8h'],
    // maxAge: '4d',
    // tls: 'opportunistic',
    // relayHost: { host: 'smtp.example.net', port: 587, auth: { user: '', pass: '' } },
  },
  tracking: {
    // opens: true, clicks: true, unsubscribe: false,
  },
});
