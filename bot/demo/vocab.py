"""The demo's built-in word lists: people, companies, titles and the website's pages.

Every name here is what the default scoring model (``config/default.yaml``) rewards or
penalises, so change one only together with the model. Nothing is read from outside.
"""

from __future__ import annotations

SITE = "https://www.example-saas.com"

FIRST_NAMES = (
    "Ada", "Alex", "Amara", "Ben", "Carla", "Chen", "Dana", "David", "Elena", "Emil",
    "Fatima", "Felix", "Grace", "Hannah", "Hugo", "Ines", "Jonas", "Julia", "Kai", "Karin",
    "Liam", "Lina", "Marco", "Maya", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rafael",
    "Sara", "Sofia", "Tariq", "Tom", "Uma", "Victor", "Wen", "Yara", "Yusuf", "Zoe",
)  # fmt: skip

LAST_NAMES = (
    "Andersson", "Bakker", "Bianchi", "Brown", "Costa", "Dubois", "Eriksson", "Fischer",
    "Garcia", "Hansen", "Ito", "Jansen", "Khan", "Kowalski", "Lefebvre", "Lopez", "Martin",
    "Meyer", "Moreau", "Nguyen", "Novak", "Okafor", "Patel", "Rossi", "Santos", "Schmidt",
    "Silva", "Smith", "Tanaka", "Taylor", "Visser", "Wagner", "Walsh", "Weber", "Wilson",
    "Young",
)  # fmt: skip

COMPANY_STEMS = (
    "Acme", "Apex", "Arbor", "Beacon", "Bluefin", "Brightway", "Cobalt", "Copper", "Crest",
    "Delta", "Ember", "Evergreen", "Falcon", "Fjord", "Granite", "Harbor", "Helix", "Indigo",
    "Juniper", "Keystone", "Lumen", "Maple", "Meridian", "Nimbus", "Northwind", "Orbit",
    "Pinnacle", "Quartz", "Redwood", "Summit", "Tidal", "Umbra", "Vertex", "Willow", "Zenith",
)  # fmt: skip

# Suffixes by industry, so a company's name and domain read like its trade.
INDUSTRY_SUFFIXES: dict[str, tuple[str, ...]] = {
    "Software": ("soft", "ware", " Labs"),
    "SaaS": ("ly", " Cloud", "desk"),
    "Internet": (" Digital", " Online", "hub"),
    "Information Technology": (" Systems", " Tech", " IT"),
    "Financial Services": (" Capital", " Finance", " Bank"),
    "Manufacturing": (" Industries", " Works", " Manufacturing"),
    "Retail": (" Retail", " Stores", " Goods"),
    "Education": (" Academy", " Learning", " College"),
    "Healthcare": (" Health", " Care", " Medical"),
}

TECH_INDUSTRIES = ("Software", "SaaS", "Internet", "Information Technology")
OTHER_INDUSTRIES = ("Financial Services", "Manufacturing", "Retail", "Education", "Healthcare")

SALES_LEADERS = (
    "VP of Sales",
    "Head of Revenue",
    "Director of Sales",
    "Chief Revenue Officer",
    "SVP Sales",
)
SALES_OPS = ("Sales Operations Manager", "RevOps Lead")
OTHER_ROLES = ("Marketing Manager", "Software Engineer", "CFO", "Founder")
STUDENT_TITLES = ("Student", "Marketing Intern")

CRMS = ("Salesforce", "HubSpot", "Pipedrive")

# Core markets first; the UTC offset places each lead's working hours.
CORE_COUNTRIES = ("US", "GB", "DE", "FR", "NL", "SE", "CA", "AU")
OTHER_COUNTRIES = ("IN", "BR", "ES", "PL", "SG")
UTC_OFFSET_HOURS: dict[str, float] = {
    "US": -5.0, "CA": -5.0, "BR": -3.0, "GB": 0.0, "DE": 1.0, "FR": 1.0, "NL": 1.0,
    "SE": 1.0, "ES": 1.0, "PL": 1.0, "IN": 5.5, "SG": 8.0, "AU": 11.0,
}  # fmt: skip

FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
COMPETITORS: dict[str, tuple[str, int]] = {
    # company name -> (e-mail domain, employee count)
    "RivalCRM": ("rivalcrm.example", 420),
    "Leadzilla": ("leadzilla.example", 160),
}

BLOG = (
    "lead-scoring-101",
    "speed-to-lead",
    "sales-pipeline-metrics",
    "crm-hygiene-checklist",
    "cold-email-benchmarks-2026",
    "revops-stack",
    "forecasting-accuracy",
    "mql-vs-sql",
)
CUSTOMERS = ("northwind", "globex", "initech", "umbrella-health", "vandelay")
CASE_STUDIES = ("doubling-demo-rate", "routing-in-seconds", "scoring-that-sales-trusts")
DOCS = ("getting-started", "webhooks", "salesforce-integration", "scoring-rules", "api-reference")

PAGE_NAMES = {
    "/": "Home",
    "/pricing": "Pricing",
    "/pricing/enterprise": "Enterprise Pricing",
    "/product": "Product",
    "/careers": "Careers",
    "blog": "Blog",
    "customers": "Customers",
    "case-studies": "Case Studies",
    "docs": "Docs",
}

REFERRERS = (
    "https://www.google.com/",
    "https://www.linkedin.com/",
    "https://www.bing.com/",
    "https://news.ycombinator.com/",
)

CAMPAIGNS = ("newsletter-2026-03", "webinar-invite", "pricing-update", "customer-stories")
WEBINARS = ("Scoring leads that sales trusts", "RevOps in 30 minutes")
WHITEPAPERS = (
    "The State of B2B Lead Scoring 2026",
    "The RevOps Playbook",
    "Benchmark: Speed to Lead",
)
