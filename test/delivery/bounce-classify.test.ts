import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyBounce,
  enhancedCode,
  isPermanent,
  normaliseReplyText,
  replyCode,
  type BounceClass,
} from '../../src/delivery/bounce-classify.js';

// Replies as the servers phrase them (multi-line replies joined with \n, the way the SMTP
// client hands them over). Each row: [who, reply, expected class].
const CASES: [string, string, BounceClass][] = [
  // --- Gmail / Google Workspace
  ['gmail no such user',
    '550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient\'s email address for typos or\n550-5.1.1 unnecessary spaces. For more information, go to\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d2e1a72fcca58-72a1b2c3d4e5si123456b3a.123 - gsmtp', 'bad-mailbox'],
  ['gmail disabled', '550 5.2.1 The email account that you tried to reach is disabled. https://support.google.com/mail/?p=DisabledUser a1si2345678qkb.12 - gsmtp', 'bad-mailbox'],
  ['gmail over quota',
    '552-5.2.2 The recipient\'s inbox is out of storage space. Please direct the\n552-5.2.2 recipient to\n552 5.2.2  https://support.google.com/mail/?p=OverQuotaPerm 41be03b00d2f7-5c2d - gsmtp', 'mailbox-full'],
  ['gmail size', '552-5.3.4 Your message exceeded Google\'s message size limits. Please visit\n552 5.3.4  https://support.google.com/mail/?p=MaxSizeError y4si - gsmtp', 'message-too-large'],
  ['gmail unsolicited content',
    '550-5.7.1 [203.0.113.7      12] Our system has detected that this message is\n550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n550-5.7.1 this message has been blocked. Please visit\n550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError q12si - gsmtp', 'spam'],
  ['gmail IP reputation',
    '550-5.7.1 [203.0.113.7      12] Our system has detected an unusual rate of\n550-5.7.1 unsolicited mail originating from your IP address. To protect our\n550-5.7.1 users from spam, mail sent from your IP address has been blocked.\n550 5.7.1  https://support.google.com/mail/?p=UnsolicitedIPError z1si - gsmtp', 'policy'],
  ['gmail DMARC',
    '550-5.7.26 Unauthenticated email from example.com is not accepted due to\n550-5.7.26 domain\'s DMARC policy. Please contact the administrator of\n550-5.7.26 example.com domain if this was a legitimate mail. To learn about the\n550 5.7.26 DMARC initiative, go to https://support.google.com/mail/?p=DmarcRejection a8si - gsmtp', 'policy'],
  ['gmail unauthenticated sender',
    '550-5.7.26 This mail has been blocked because the sender is unauthenticated.\n550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.\n550 5.7.26  https://support.google.com/mail/answer/81126#authentication c3si - gsmtp', 'policy'],
  ['gmail PTR',
    '550-5.7.25 [203.0.113.7] The IP address sending this message does not have a\n550-5.7.25 PTR record setup, or the corresponding forward DNS entry does not\n550 5.7.25 point to the sending IP. https://support.google.com/mail/?p=IPv6PTRError - gsmtp', 'policy'],
  ['gmail security content', '552-5.7.0 This message was blocked because its content presents a potential\n552-5.7.0 security issue. Please visit\n552 5.7.0  https://support.google.com/mail/?p=BlockedMessage b5si - gsmtp', 'spam'],
  ['gmail recipient domain', '553-5.1.2 We weren\'t able to find the recipient domain. Please check for any\n553 5.1.2 spelling errors, and make sure you didn\'t enter any spaces. - gsmtp', 'bad-domain'],
  ['gmail 5.2.1 rate (text beats code)', '550 5.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. https://support.google.com/mail/?p=ReceivingRatePerm - gsmtp', 'policy'],
  ['gmail daily limit', '550 5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852 - gsmtp', 'policy'],

  // --- Microsoft 365 / Outlook.com
  ['m365 recipient not found', '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'bad-mailbox'],
  ['m365 DBEB', '550 5.4.1 Recipient address rejected: Access denied. For more information see https://aka.ms/EXOSmtpErrors [BN8NAM12FT057.eop-nam12.prod.protection.outlook.com 2024-01-01T00:00:00.000Z 08DC1A2B3C4D5E6F]', 'bad-mailbox'],
  ['m365 banned IP', '550 5.7.606 Access denied, banned sending IP [203.0.113.7]. To request removal from this list please visit https://sender.office.com/ and follow the directions. For more information please go to  http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]', 'policy'],
  ['m365 DMARC reject', '550 5.7.509 Access denied, sending domain example.com does not pass DMARC verification and has a DMARC policy of reject. [AM4PEPF00025F98.EURPRD83.prod.outlook.com 2024-02-02T10:00:00.000Z 08DC1B2B3C4D5E6F]', 'policy'],
  ['outlook.com S3150', '550 5.7.1 Unfortunately, messages from [203.0.113.7] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [VI1EUR04FT021.eop-eur04.prod.protection.outlook.com]', 'policy'],
  ['m365 mailbox full', '554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot open mailbox.', 'mailbox-full'],
  ['m365 DNS domain', '550 5.4.310 DNS domain example.invalid does not exist [Message=InfoDomainNonexistent] [LastAttemptedServerName=example.invalid] [DM6NAM11FT011.eop-nam11.prod.protection.outlook.com]', 'bad-domain'],
  ['m365 group auth', '550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; Delivery restriction check failed because the sender was not authenticated when sending to this group', 'policy'],
  ['m365 forwarding', '550 5.7.520 Access denied, Your organization does not allow external forwarding. Please contact your administrator for further assistance. AS(7555)', 'policy'],
  ['m365 traffic not accepted', '550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(2400)', 'policy'],
  ['m365 loop', '554 5.4.14 Hop count exceeded - possible mail loop ATTR34 [SN1NAM02FT018.eop-nam02.prod.protection.outlook.com]', 'other'],

  // --- Yahoo / AOL
  ['yahoo no account', '554 delivery error: dd This user doesn\'t have a yahoo.com account (someone@yahoo.com) [0] - mta1012.mail.gq1.yahoo.com', 'bad-mailbox'],
  ['yahoo disabled', '554 30 Sorry, your message to someone@yahoo.com cannot be delivered. This mailbox is disabled (554.30).', 'bad-mailbox'],
  ['yahoo mailbox not found', '552 1 Requested mail action aborted, mailbox not found', 'bad-mailbox'],
  ['yahoo spamhaus', '553 5.7.1 [BL21] Connections will not be accepted from 203.0.113.7, because the ip is in Spamhaus\'s list; see https://postmaster.yahooinc.com/error-codes', 'policy'],
  ['yahoo policy', '554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes', 'policy'],

  // --- QQ
  ['qq mailbox not found', '550 Mailbox not found. http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000728', 'bad-mailbox'],
  ['qq ip frequency', '550 Ip frequency limited. http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000722', 'policy'],
  ['qq content denied', '550 Mail content denied. http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000726', 'spam'],
  ['qq rejected by recipient', '550 Mail is rejected by recipients [MP5Pb2dGOTg0NjQ4 IP: 203.0.113.7]. https://service.mail.qq.com/detail/0/92.', 'policy'],

  // --- NetEase 163 / 126
  ['163 user not found', '550 User not found: someone@163.com', 'bad-mailbox'],
  ['163 user suspended', '550 User suspended: someone@126.com', 'bad-mailbox'],
  ['163 DT:SPM', '554 DT:SPM 163 smtp12,EMCowAD3mWwnYaVj1mJ3Ag--.4471S2 1671782695,please see http://mail.163.com/help/help_spam_16.htm?ip=203.0.113.7&hostid=smtp12&time=1671782695', 'spam'],
  ['126 mailsize', '552 Requested mail action aborted: exceeded mailsize limit', 'message-too-large'],
  ['163 rate', '550 RP:TRC 163 mx14,QsCowAB3K3ckYqVjn8YZCA--.8392S3 1671787044,please see http://mail.163.com/help/help_spam_16.htm?ip=203.0.113.7', 'policy'],

  // --- Postfix
  ['postfix local user unknown', '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table', 'bad-mailbox'],
  ['postfix virtual user unknown', '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table', 'bad-mailbox'],
  ['postfix relay denied', '554 5.7.1 <someone@elsewhere.example>: Relay access denied', 'policy'],
  ['postfix size', '552 5.3.4 Message size exceeds fixed limit', 'message-too-large'],
  ['postfix zen', '554 5.7.1 Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.7', 'policy'],
  ['postfix SPF policyd', '550 5.7.23 <someone@example.org>: Recipient address rejected: Message rejected due to: SPF fail - not authorized. Please see http://www.open-spf.org/Why;id=a%40example.com;ip=203.0.113.7;r=<UNKNOWN>', 'policy'],
  ['postfix reverse hostname', '550 5.7.1 <unknown[203.0.113.7]>: Client host rejected: cannot find your reverse hostname, [203.0.113.7]', 'policy'],
  ['postfix sender domain', '550 5.1.0 <a@nonexistent.example>: Sender address rejected: Domain not found', 'policy'],
  ['postfix recipient domain', '550 5.1.2 <a@nonexistent.example>: Recipient address rejected: Domain not found', 'bad-domain'],
  ['named domain does not exist', '550 5.1.2 <someone@example.invalid>: Recipient address rejected: Domain example.invalid does not exist', 'bad-domain'],
  ['postfix content', '550 5.7.1 Message content rejected', 'spam'],
  ['dovecot quota', '552 5.2.2 <someone@example.org> Quota exceeded (mailbox for user is full)', 'mailbox-full'],

  // --- Exim / cPanel
  ['exim sender verify',
    '550-Verification failed for <bounce@sender.example>\n550-Unrouteable address\n550 Sender verify failed', 'policy'],
  ['exim unrouteable', '550 Unrouteable address', 'bad-mailbox'],
  ['cpanel no such user', '550 No Such User Here', 'bad-mailbox'],
  ['exim size', '552 Message size exceeds maximum permitted', 'message-too-large'],
  ['exim admin prohibition', '550 Administrative prohibition', 'policy'],
  ['exim RBL', '550-JunkMail rejected - mx.sender.example [203.0.113.7]:41234 is in an RBL: Blocked - see\n550 https://www.spamcop.net/bl.shtml?203.0.113.7', 'policy'],
  ['cpanel spamassassin', '550 The mail server detected your message as spam and has prevented delivery.', 'spam'],
  ['exim relay', '550-mx.sender.example [203.0.113.7] is currently not permitted to relay through this\n550-server. Perhaps you have not logged in to the pop/imap server in the last 30\n550 minutes or do not have SMTP Authentication turned on in your email client.', 'policy'],

  // --- Sendmail / qmail
  ['sendmail user unknown', '550 5.1.1 <nobody@example.org>... User unknown', 'bad-mailbox'],
  ['sendmail size', '552 5.2.3 Message exceeds maximum fixed size (10485760)', 'message-too-large'],
  ['sendmail relaying', '550 5.7.1 <someone@elsewhere.example>... Relaying denied. Proper authentication required.', 'policy'],
  ['sendmail host unknown', '550 5.1.2 <someone@nonexistent.example>... Host unknown (Name server: nonexistent.example: host not found)', 'bad-domain'],
  ['sendmail sender domain', '553 5.1.8 <bounce@nonexistent.example>... Domain of sender address bounce@nonexistent.example does not exist', 'policy'],
  ['sender domain wording', '550 5.7.1 Sender domain sender.example does not exist', 'policy'],
  ['sendmail mailbox full', '552 5.2.2 <someone@example.org>... Mailbox full', 'mailbox-full'],
  ['qmail rcpthosts', '553 sorry, that domain isn\'t in my list of allowed rcpthosts (#5.7.1)', 'policy'],

  // --- GoDaddy (5.1.1 misused for a rate limit)
  ['godaddy rate limit', '550 5.1.1 <someone@example.org> has sent to too many recipients this hour. IB605', 'policy'],
  ['godaddy user unknown', '550 5.1.1 <nobody@example.org> Recipient not found. <http://x.co/irbounce>', 'bad-mailbox'],

  // --- Mimecast
  ['mimecast invalid recipient', '550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [Lx3dYp6aMeK2-Hn_fG-Q4g.uk57]', 'bad-mailbox'],
  ['mimecast anti-spoofing', '550 Rejected by header based Anti-Spoofing policy: someone@example.org - https://community.mimecast.com/docs/DOC-1369#550 [b3Q-LQz0Pp6QkL3vBNVw.us184]', 'policy'],
  ['mimecast envelope blocked', '550 Envelope blocked - User Entry - https://community.mimecast.com/docs/DOC-1369#550 [uAb2c_ZsPAONXYb_x0PfDg.us521]', 'policy'],

  // --- Proofpoint
  ['proofpoint reputation', '554 5.7.1 Service Unavailable; Client host [203.0.113.7] blocked using Proofpoint Dynamic Reputation; https://ipcheck.proofpoint.com/?ip=203.0.113.7', 'policy'],
  ['proofpoint user unknown', '550 5.1.1 User Unknown', 'bad-mailbox'],
  ['proofpoint spam', '554 5.7.1 Message blocked due to spam content in the message.', 'spam'],

  // --- Zoho
  ['zoho no user', '550 5.1.1 User does not exist - <someone@zoho.com>', 'bad-mailbox'],
  ['zoho mailbox size', '552 5.2.2 Mailbox size limit exceeded', 'mailbox-full'],
  ['zoho unusual activity', '550 5.4.6 Unusual sending activity detected. Please try after sometime. Learn more : https://zoho.to/o9', 'policy'],
  ['zoho relaying', '553 Relaying disallowed as someone@zoho.com', 'policy'],

  // --- iCloud
  ['icloud user does not exist', '550 5.1.1 <someone@icloud.com>: user does not exist', 'bad-mailbox'],
  ['icloud over quota', '552 5.2.2 <someone@icloud.com>: user is over quota', 'mailbox-full'],
  ['icloud local policy', '554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137', 'policy'],

  // --- Other blocklists, null MX, viruses, fallbacks
  ['barracuda', '554 Service unavailable; Client host [203.0.113.7] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?pr=1&ip=203.0.113.7', 'policy'],
  ['sorbs', '554 5.7.1 Rejected 203.0.113.7 found in dnsbl.sorbs.net', 'policy'],
  ['null MX (RFC 7505)', '556 5.1.10 Recipient address has null MX', 'bad-domain'],
  ['dmarc generic', '550 5.7.1 Email rejected per DMARC policy for example.com', 'policy'],
  ['virus', '554 5.7.1 Message rejected because it contains a virus (Eicar-Test-Signature)', 'spam'],
  ['uribl', '554 5.7.1 Message rejected: URIBL listed domain in message body (multi.uribl.com)', 'spam'],
  ['fallback 5.1.1 only', '550 5.1.1 Bad destination mailbox address', 'bad-mailbox'],
  ['fallback 5.1.2 only', '550 5.1.2 Bad destination system address', 'bad-domain'],
  ['fallback 5.7.x only', '550 5.7.0 Command refused', 'policy'],
  ['fallback 5.2.3 only', '554 5.2.3 Message length exceeds administrative limit', 'message-too-large'],
  ['no code no words', '554 Transaction failed', 'other'],
  ['MIME error', '554 5.6.0 Invalid MIME structure', 'other'],
  // An address must not decide the class: "over quota" here is only a quoted local part.
  ['address with keywords', '550 5.1.1 <"over quota"@example.org>: Recipient address rejected: User unknown in local recipient table', 'bad-mailbox'],
  ['address with spam keyword', '550 5.7.1 <spam@example.org>... Access denied', 'policy'],
];

test('classifyBounce: at least 45 provider replies', () => {
  assert.ok(CASES.length >= 45, `only ${CASES.length} cases`);
});

for (const [who, reply, expected] of CASES) {
  test(`classifyBounce: ${who} → ${expected}`, () => {
    assert.equal(classifyBounce(reply), expected, reply);
  });
}

test('classifyBounce: every class is reachable from the table', () => {
  const seen = new Set(CASES.map(([, reply]) => classifyBounce(reply)));
  for (const c of ['bad-mailbox', 'bad-domain', 'mailbox-full', 'message-too-large', 'policy', 'spam', 'other'] as const) {
    assert.ok(seen.has(c), c);
  }
});

test('replyCode and enhancedCode read the first line and any continuation line', () => {
  assert.equal(replyCode('550-5.1.1 a\n550 5.1.1 b'), 550);
  assert.equal(enhancedCode('550-5.1.1 a\n550 5.1.1 b'), '5.1.1');
  assert.equal(enhancedCode('550 Unrouteable address'), undefined);
  assert.equal(enhancedCode("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"), '5.7.1');
  assert.equal(replyCode('garbage'), undefined);
  assert.equal(enhancedCode('552 1 Requested mail action aborted'), undefined);
});

test('normaliseReplyText strips codes and addresses from every line', () => {
  assert.equal(
    normaliseReplyText('550-5.1.1 The account <a@b.example>\n550 5.1.1 does NOT exist x@y.example'),
    'the account does not exist',
  );
});

test('isPermanent: only 5xx', () => {
  assert.equal(isPermanent(550), true);
  assert.equal(isPermanent(500), true);
  assert.equal(isPermanent(599), true);
  assert.equal(isPermanent(451), false);
  assert.equal(isPermanent(250), false);
  assert.equal(isPermanent(600), false);
});
