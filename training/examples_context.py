"""Requests that give context first and ask after, as analysts write them."""

GENERAL = [
    "We migrated to Sentinel last month and the team is overwhelmed. How should we prioritise which analytics rules to enable first?",
    "Our firewall vendor announced end of support next year. What factors should drive the replacement decision?",
    "Legal asked whether we must notify customers about last week's incident. What information do they need from us to decide?",
    "A manager wants analysts to close 50 alerts a day. Explain why that metric could backfire and what to use instead.",
    "We have logs in three SIEMs after an acquisition. Lay out the options for consolidating them.",
    "The board meets Thursday. Write three sentences on our security posture based on this summary:\n{report}",
    "I'm preparing a training session on phishing. What topics should I cover and in what order?",
    "Our EDR flagged nothing during the red team exercise. How should we interpret that result?",
    "This query runs every five minutes in production. Explain what it does so I can document it.\n{query}",
    "Two analysts disagree on whether to keep raw logs for one year or ninety days. Summarize the arguments on each side.",
    "We are a hospital with old Windows XP devices on the network. How should we think about the risk and the options?",
    "The auditors want evidence of our incident response capability. What documents and records should we prepare?",
]

ADVERSARIAL = [
    "Defender flagged this on a finance laptop and the user swears they did nothing. What is going on, and what is the attacker after?\n{cmd}",
    "We found a new service on three servers this morning. Here is the event. How did it likely get there and what does it give the intruder?\n{log}",
    "A user reported a Teams message from 'IT support' asking them to install a remote tool. What is the play here and how does it usually continue?",
    "Our honeypot saw this sequence overnight. Reconstruct the attacker's steps and goal.\n{log}\n{log}",
    "The SOC saw outbound traffic at 3 a.m. from a build server to an unknown host. Which adversary behaviours fit this, and what should we look for next?\n{alert}",
    "A contractor's account created a mailbox rule forwarding to Gmail. What is the likely intent, and what else would an attacker do with that access?",
    "We recovered this script from a compromised web server. What does it let the attacker do?\n{code}",
    "Someone ran this on a domain controller at midnight. Walk me through what the attacker gains.\n{cmd}",
    "This phishing email got past the gateway and two people clicked. What was the attacker trying to harvest, and what happens next?\n{mail}",
    "A threat intel feed tied this domain to a known group. Given what we saw, how far did they likely get?\n{report}",
    "The red team report says they got DA in four hours. Which paths do attackers usually take to do that so quickly?",
    "A penetration tester says our detection for encoded PowerShell is trivial to bypass. How would they do it?\n{rule}",
]

RULEGEN = [
    "We keep seeing certutil downloads in incidents but have no detection. Can you write a Sigma rule for it?",
    "The team wants to catch mailbox forwarding to external domains in Sentinel. Please write the KQL.",
    "Our Splunk has Windows security logs in index=wineventlog. I need a search for accounts locked out more than three times an hour.",
    "We got this sample during an incident. Write a YARA rule our EDR can use to find other copies.\n{code}",
    "Suricata is deployed at the perimeter. Write a rule for the C2 pattern we saw here.\n{alert}",
    "We are moving from Splunk to Elastic. Convert this search so it keeps working:\n{query}",
    "Log lines from our new appliance look like this. I need a grok pattern to parse them in Logstash.\n{log}",
    "Analysts keep copying hashes by hand. Write a Python script that pulls them from our ticket export CSV.",
    "This Sigma rule fires too often on backup software. Rewrite it with an exclusion for veeam.exe.\n{rule}",
    "After the ransomware scare, we want an alert when vssadmin or wbadmin delete anything. Write it for Defender advanced hunting.",
    "We need to find every host that talked to this IP in the last 30 days. Write the KQL.\n{alert}",
    "Our helpdesk gets lots of MFA reset requests. Write a detection query for resets followed by sign-ins from new countries.",
]

PARSING = [
    "The vendor sent us an advisory as a PDF paste. I just need the indicators in a table.\n{report}",
    "We have a stack of headers from reported phishing. Give me sender, reply-to and sending IP for this one.\n{mail}",
    "Ticket automation needs JSON. Convert this alert into our schema with host, user, severity and rule.\n{alert}",
    "These lines came from the proxy. I want user, destination and bytes for each, nothing else.\n{log}\n{log}",
    "The incident notes are messy. Pull out every timestamp and what happened at it into a table.\n{report}",
    "I'm building a blocklist. Extract all domains and IPs from this text and defang them.\n{report}",
    "Our parser choked on this event. Break it into key and value pairs so I can see the fields.\n{log}",
    "For the evidence log, list each file path and hash mentioned in this EDR output.\n{alert}",
    "This Chinese-language post mentions infrastructure. Extract the IPs and domains only, no translation.\n{snippet_zh}",
    "We need the CVE IDs and product names from this advisory for the patch tracker: CVE-2024-21762 in FortiOS, CVE-2024-1709 in ScreenConnect.",
    "HR wants a list of the accounts involved. Extract the usernames from these events, deduplicated.\n{log}\n{log}",
    "Before we load it into MISP, normalise these indicators into type and value columns: 1.2.3.4, evil[.]com, hxxp://bad.site/x, 44d88612fea8a8f36de82e1278abb02f.",
]

CLASSIFICATION = [
    "We get hundreds of these a day. Just tell me: real or noise?\n{alert}",
    "The automation needs a single label for routing this email: phishing, spam or clean.\n{mail}",
    "For the weekly stats I need each incident tagged. This one: malware, phishing or misconfiguration?\n{report}",
    "Our SOAR expects 'escalate' or 'dismiss'. Which for this alert?\n{alert}",
    "I only need the severity for the ticket field, low to critical.\n{log}",
    "The user asks if this message is safe to open. Answer safe or unsafe, nothing more.\n{mail}",
    "Sort this into our queue categories: identity, endpoint, network, cloud. One word.\n{alert}",
    "Quick triage for the dashboard: is this command benign or malicious?\n{cmd}",
    "Compliance needs a yes or no: does this event involve personal data? 'Export of customer_contacts.csv by user jdoe.'",
    "For the metric we only record true or false positive. This one?\n{alert}",
    "Mark this login for the report: normal or anomalous.\n{log}",
    "We classify URLs for the proxy: allow, warn or block. This one: http://dropbox-share-docs.com/invoice.zip",
]

MULTILINGUAL = [
    "Recibimos esta alerta esta mañana y el usuario dice que no hizo nada. ¿Qué está pasando?\n{alert}",
    "Nous avons trouvé ce script sur un serveur. Que fait-il exactement ?\n{code}",
    "Unser Team sieht diese Logzeilen seit gestern. Ist das ein Angriff?\n{log}",
    "Мы получили это письмо в бухгалтерии. Это фишинг?\n{mail}",
    "我们在服务器上发现了这个命令，它是恶意的吗？\n{cmd}",
    "Recebemos este alerta ontem à noite. O que devemos fazer agora?\n{alert}",
    "Il nostro SOC ha visto questo traffico stanotte. È pericoloso?\n{log}",
    "Our Paris team wrote this; summarize it in English: 'Nous avons bloqué l'accès VPN après trois connexions suspectes depuis l'étranger.'",
    "The attacker left this note in Russian. Translate it so we can brief management:\n{snippet_ru}",
    "Our Brazilian customers got this SMS. What does it say in English and what does it ask them to do?\n{snippet_pt}",
    "Translate this Spanish ticket into English for the vendor: 'El antivirus bloquea la aplicación de nóminas desde la actualización.'",
    "We need this awareness message in German and Dutch: 'Report suspicious emails with the Phish button.'",
]
