//! The names and values that generated records are made of.

#![cfg_attr(rustfmt, rustfmt_skip)]

/// The names and values that records are made of. Property names that KM sets
/// itself are lower case, as in its exports; those a site chose keep their case.
use super::lines::Value;

pub const EVENT_NAMES: &[&str] = &[
    "visited site", "viewed page", "clicked button", "viewed product", "searched",
    "logged in", "signed up", "added to cart", "viewed pricing", "started checkout",
    "completed purchase", "billed", "started trial", "opened email", "clicked email link",
    "submitted form", "watched video", "downloaded file", "viewed dashboard", "used feature",
    "ad campaign hit", "search engine hit", "logged out", "removed from cart", "upgraded",
    "downgraded", "cancelled", "shared", "commented", "invited teammate",
    "created project", "updated profile", "changed password", "exported report", "completed onboarding",
    "viewed help article", "contacted support", "rated app", "installed app", "opened app",
    "received push notification", "subscribed to newsletter", "unsubscribed", "applied coupon", "payment failed",
    "renewed subscription", "referred friend", "uploaded file", "reached level", "error",
];

pub const PROPERTIES: &[(&str, Value)] = &[
    ("Page", Value::Path),
    ("referrer", Value::Choice(REFERRERS)),
    ("url", Value::Url),
    ("Browser", Value::Choice(BROWSERS)),
    ("Plan", Value::Choice(PLANS)),
    ("campaign source", Value::Choice(SOURCES)),
    ("campaign medium", Value::Choice(MEDIUMS)),
    ("OS", Value::Choice(OPERATING_SYSTEMS)),
    ("Country", Value::Choice(COUNTRIES)),
    ("Age", Value::Int(90)),
    ("Button", Value::Choice(BUTTONS)),
    ("search terms", Value::Words),
    ("City", Value::Choice(CITIES)),
    ("Device", Value::Choice(DEVICES)),
    ("Billing Amount", Value::Money(500)),
    ("Product", Value::Choice(PRODUCTS)),
    ("Price", Value::Money(200)),
    ("Quantity", Value::Int(10)),
    ("Logged In", Value::Bool),
    ("campaign name", Value::Words),
    ("Landing Page", Value::Url),
    ("Language", Value::Choice(LANGUAGES)),
    ("search engine", Value::Choice(SEARCH_ENGINES)),
    ("Gender", Value::Choice(GENDERS)),
    ("Billing Description", Value::Choice(BILLING)),
    ("Currency", Value::Choice(CURRENCIES)),
    ("Order ID", Value::Code),
    ("Coupon", Value::Code),
    ("Trial", Value::Bool),
    ("Form", Value::Choice(FORMS)),
    ("Screen Width", Value::Int(3000)),
    ("Screen Height", Value::Int(2000)),
    ("campaign terms", Value::Words),
    ("campaign content", Value::Words),
    ("Company", Value::Words),
    ("Title", Value::Choice(JOB_TITLES)),
    ("Industry", Value::Choice(INDUSTRIES)),
    ("Employees", Value::Int(5000)),
    ("Newsletter", Value::Bool),
    ("Video", Value::Words),
    ("Duration", Value::Money(600)),
    ("Score", Value::Int(100)),
    ("Level", Value::Int(50)),
    ("App Version", Value::Choice(APP_VERSIONS)),
    ("Platform", Value::Choice(PLATFORMS)),
    ("Error", Value::Words),
    ("Items in Cart", Value::Int(20)),
    ("Cart Value", Value::Money(1000)),
    ("Payment Method", Value::Choice(PAYMENT_METHODS)),
    ("MRR", Value::Money(5000)),
    ("Lifetime Value", Value::Money(20000)),
    ("Seats", Value::Int(500)),
    ("Experiment", Value::Choice(EXPERIMENTS)),
    ("Variant", Value::Choice(VARIANTS)),
    ("Email Subject", Value::Words),
    ("Time on Page", Value::Int(3600)),
    ("Scroll Depth", Value::Int(101)),
    ("Rating", Value::Int(6)),
    ("Feedback", Value::Words),
    ("Category", Value::Choice(CATEGORIES)),
    ("Tags", Value::Words),
    ("Session Count", Value::Int(1000)),
    ("Days Since Signup", Value::Int(730)),
    ("Timezone", Value::Choice(TIMEZONES)),
    ("viewed url", Value::Url),
    ("Browser Version", Value::Int(60)),
    ("Beta User", Value::Bool),
    ("SKU", Value::Code),
    ("Discount", Value::Money(100)),
    ("Project", Value::Words),
];

/// Value kinds for the `Custom N` properties that fill the pool.
pub const CUSTOM_VALUES: &[Value] = &[Value::Words, Value::Int(1000), Value::Bool, Value::Choice(PLANS), Value::Code, Value::Money(100)];

pub const REFERRERS: &[&str] = &["google", "direct", "facebook", "twitter", "bing", "newsletter", "linkedin", "reddit", "yahoo"];
pub const PLANS: &[&str] = &["free", "basic", "silver", "gold", "platinum", "enterprise"];
pub const BROWSERS: &[&str] = &["Chrome", "Firefox", "Safari", "Internet Explorer", "Edge", "Opera", "Mobile Safari", "Android Browser"];
pub const OPERATING_SYSTEMS: &[&str] = &["Windows", "Mac OS X", "iOS", "Android", "Linux", "Chrome OS"];
pub const DEVICES: &[&str] = &["desktop", "mobile", "tablet"];
pub const COUNTRIES: &[&str] = &["United States", "United Kingdom", "Canada", "Germany", "France", "Brazil", "India", "Australia", "Japan", "Spain"];
pub const CITIES: &[&str] = &["New York", "San Francisco", "London", "Toronto", "Berlin", "Paris", "São Paulo", "München", "Zürich", "東京", "Bangalore", "Sydney"];
pub const LANGUAGES: &[&str] = &["en-US", "en-GB", "de", "fr", "pt-BR", "es", "ja", "nl"];
pub const SOURCES: &[&str] = &["google", "facebook", "twitter", "newsletter", "bing", "partner", "adwords", "linkedin"];
pub const MEDIUMS: &[&str] = &["cpc", "email", "social", "organic", "referral", "display", "affiliate"];
pub const SEARCH_ENGINES: &[&str] = &["Google", "Bing", "Yahoo", "DuckDuckGo", "Baidu", "Yandex"];
pub const GENDERS: &[&str] = &["male", "female", "other"];
pub const BILLING: &[&str] = &["Monthly subscription", "Annual subscription", "Seat upgrade", "One-time purchase", "Refund"];
pub const PRODUCTS: &[&str] = &["T-Shirt", "Mug", "Hoodie", "Sticker Pack", "E-Book", "Online Course", "Gift Card", "Poster"];
pub const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "BRL"];
pub const FORMS: &[&str] = &["signup", "contact", "newsletter", "checkout", "login", "demo request"];
pub const BUTTONS: &[&str] = &["Sign Up", "Buy Now", "Learn More", "Start Trial", "Contact Us", "Download", "Subscribe"];
pub const JOB_TITLES: &[&str] = &["CEO", "CTO", "Founder", "Marketing Manager", "Engineer", "Designer", "Analyst", "Sales"];
pub const INDUSTRIES: &[&str] = &["Software", "E-commerce", "Education", "Finance", "Healthcare", "Media", "Travel"];
pub const APP_VERSIONS: &[&str] = &["1.0.0", "1.2.3", "2.0.1", "2.1.0", "3.0.0-beta"];
pub const PLATFORMS: &[&str] = &["web", "ios", "android", "api"];
pub const PAYMENT_METHODS: &[&str] = &["credit card", "paypal", "invoice", "apple pay", "bank transfer"];
pub const EXPERIMENTS: &[&str] = &["homepage headline", "pricing layout", "signup flow", "checkout button color"];
pub const VARIANTS: &[&str] = &["control", "variant a", "variant b"];
pub const CATEGORIES: &[&str] = &["Apparel", "Books", "Electronics", "Home", "Software", "Toys"];
pub const TIMEZONES: &[&str] = &["America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"];
pub const PATHS: &[&str] = &["/", "/pricing", "/features", "/signup", "/login", "/about", "/blog", "/contact", "/docs", "/checkout", "/cart", "/account", "/help"];
pub const WORDS: &[&str] = &[
    "best", "cheap", "analytics", "tool", "red", "shoes", "how", "to", "track", "users", "free", "trial",
    "pricing", "review", "vs", "dashboard", "metrics", "growth", "funnel", "report", "timeout", "failed",
    "payment", "great", "product", "slow", "love", "it", "acme", "summer", "sale", "launch",
];
pub const FIRST_NAMES: &[&str] = &["anna", "ben", "carla", "david", "emma", "felix", "grace", "hugo", "ines", "jack", "kim", "liam", "maria", "noah", "olga", "paul"];
pub const LAST_NAMES: &[&str] = &["smith", "garcia", "mueller", "rossi", "tanaka", "silva", "nguyen", "kowalski", "brown", "dubois"];
pub const DOMAINS: &[&str] = &["example.com", "example.org", "mail.example.net", "example.co.uk"];

/// String values with JSON escapes for control characters and the like, as raw JSON text.
pub const ESCAPED_VALUES: &[&str] = &[r"red\tshoes", r"first line\nsecond line", r"name\tprice\tqty", r"windows\r\nline", r#"the \"best\" plan"#, r"C:\\Users\\km", r"caf\u00e9", r"\\N", r"nul\u0000byte"];
/// Octal escapes as KM writes some non-ASCII bytes: not valid JSON.
pub const OCTAL_VALUES: &[&str] = &[r"Caf\303\251", r"Frigidman\231", r"Mu\303\261oz", r"S\303\243o Paulo", r"na\303\257ve"];
/// Lines that are not JSON objects.
pub const GARBAGE: &[&str] = &["undefined", "null", "42", "\"just a string\"", "}{", "<html><body>502 Bad Gateway</body></html>", "{\"_p\" \"abc\", \"_t\" 1400000000"];
