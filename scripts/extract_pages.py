"""Real-world-shaped pages for scripts/bench_extract.py: each with the phrases a reader came
for (`body`) and the phrases that are page furniture (`boilerplate`).

The markup imitates what sites serve, not what an extractor hopes for: semantic tags on
some pages, div soup with class names on others, comment threads, forum posts that look
like comments, docs with more navigation than text, product pages with recommendations.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Page:
    name: str
    kind: str
    html: str
    body: list[str]
    boilerplate: list[str]


def _links(prefix: str, words: list[str], tag: str = "li") -> str:
    return "".join(f'<{tag}><a href="/{prefix}/{n}">{word}</a></{tag}>' for n, word in enumerate(words))


SITE_NAV = _links("section", ["World", "Politics", "Business", "Technology", "Science", "Health",
                              "Sport", "Culture", "Travel", "Opinion", "Podcasts", "Newsletters"])
FOOTER = """<footer><p>Copyright 2026 Example Media Group. All rights reserved.</p>
<p><a href="/privacy">Privacy notice</a> · <a href="/terms">Terms and conditions</a> ·
<a href="/cookies">Manage cookie settings</a></p></footer>"""
COOKIE = """<div id="consent-overlay" class="cc-window">We and our 842 partners store and access
information on your device. <a href="/cookies">Learn how we use cookies</a></div>"""


MOST_READ = _links("story", ["Ten cheap flights for autumn", "Celebrity chef opens new restaurant",
                             "The best phones of the year"])


def news_article() -> Page:
    html = f"""<html><head><title>Glacier retreat doubles - Example News</title></head><body>
{COOKIE}<header><a href="/">Example News</a><nav><ul>{SITE_NAV}</ul></nav></header>
<main><article>
<h1>Glacier retreat in the Alps has doubled since 2000</h1>
<p class="byline">By Anna Keller, science correspondent</p>
<p>Alpine glaciers lost ice twice as fast in the last two decades as in the 1990s, according to a
survey of 4,000 glaciers published on Tuesday.</p>
<p>The researchers combined satellite altimetry with field measurements taken on 62 reference
glaciers, some of them monitored continuously since the 1950s.</p>
<figure><img src="/img/glacier.jpg" alt="The Rhone glacier in 2025"><figcaption>The Rhone glacier
has retreated by more than a kilometre.</figcaption></figure>
<h2>Summer heat, not winter snow</h2>
<p>Winter snowfall has changed little, the authors say; it is the length of the melt season that
drives the losses.</p>
<div class="inline-promo"><a href="/newsletter">Sign up for our climate newsletter, delivered every
Thursday</a></div>
<p>Several smaller glaciers in the eastern Alps are expected to vanish entirely within fifteen
years.</p>
</article>
<section id="comments"><h3>Comments (214)</h3>
<div class="comment"><b>hiker42</b> I visited the Morteratsch glacier last year and the signs
marking its old edge were shocking.</div>
<div class="comment"><b>skeptic_bob</b> Funny how they never mention the medieval warm period.</div>
</section>
<aside><h3>Most read</h3><ol>{MOST_READ}</ol></aside>
</main>{FOOTER}</body></html>"""
    return Page("news-article", "article with comments", html, body=[
        "lost ice twice as fast in the last two decades",
        "combined satellite altimetry with field measurements",
        "Summer heat, not winter snow",
        "length of the melt season that drives the losses",
        "expected to vanish entirely within fifteen years",
    ], boilerplate=[
        "842 partners", "Sign up for our climate newsletter", "Morteratsch glacier last year",
        "medieval warm period", "Ten cheap flights for autumn", "Manage cookie settings", "Podcasts",
    ])


RELATED_POSTS = _links("post", ["Ten tips for crusty baguettes", "My favourite bread knives"])


def blog_div_soup() -> Page:
    widgets = "".join(f'<div class="widget"><h4>{title}</h4><ul>{_links("tag", words)}</ul></div>'
                      for title, words in (("Categories", ["Sourdough", "Pastry", "Equipment"]),
                                           ("Archives", ["October 2026", "September 2026"])))
    html = f"""<html><head><title>Why my sourdough stopped rising | Crumb & Crust</title></head><body>
<div id="page"><div class="top-bar"><a href="/">Crumb &amp; Crust</a>
<div class="menu-primary">{_links("p", ["Home", "Recipes", "About", "Shop", "Contact"], "span")}</div></div>
<div class="wrap"><div class="content-area"><div class="post">
<div class="entry-title">Why my sourdough stopped rising (and how I fixed it)</div>
<div class="entry-meta">Posted on 12 October 2026 by Tom</div>
<div class="entry-content">
<p>For three weeks every loaf came out flat and dense, even though the starter bubbled happily on
the counter.</p>
<p>The culprit turned out to be the new flour: a finely milled type 550 that absorbed far less
water than the wholemeal blend I had used before.</p>
<p>Cutting the hydration from 78 to 70 percent and extending the bulk ferment by an hour brought
the oven spring back.</p>
<div class="sharedaddy"><span>Share this:</span> Facebook Twitter Pinterest</div>
</div>
<div class="related-posts"><h3>You might also like</h3>{RELATED_POSTS}</div>
<div id="respond"><h3>Leave a Reply</h3><p>Your email address will not be published.</p></div>
</div></div>
<div class="sidebar-right">{widgets}</div></div>
<div class="site-info">Proudly powered by a blogging platform. Theme by Somebody.</div>
</div></body></html>"""
    return Page("blog-div-soup", "article with comments", html, body=[
        "every loaf came out flat and dense",
        "finely milled type 550 that absorbed far less water",
        "Cutting the hydration from 78 to 70 percent",
    ], boilerplate=[
        "Share this:", "Ten tips for crusty baguettes", "Your email address will not be published",
        "Proudly powered by", "October 2026", "Equipment",
    ])


ON_THIS_PAGE = _links("a", ["Eviction", "Sizing", "Warm-up"])


def docs_nav_heavy() -> Page:
    toc = _links("docs", [f"Chapter {n}: {word}" for n, word in enumerate(start=1, iterable=
        ["Install", "Configure", "Deploy", "Scale", "Monitor", "Backup", "Restore", "Upgrade",
         "Security", "Networking", "Storage", "Logging", "Metrics", "Alerts", "Plugins",
         "Migration", "Troubleshooting", "FAQ", "Glossary", "Release notes"])])
    html = f"""<html><head><title>Configure the cache - Nimbus docs</title></head><body>
<div class="md-header"><a href="/">Nimbus</a><form role="search"><input placeholder="Search docs"></form>
<span>v4.2</span></div>
<div class="md-container"><div class="md-sidebar md-sidebar--primary"><ul>{toc}</ul></div>
<div class="md-content"><div class="breadcrumbs">Docs / Operations / Configure the cache</div>
<h1>Configure the cache</h1>
<p>Nimbus keeps hot objects in a write-through cache whose size is set with
<code>cache.max_bytes</code>.</p>
<pre><code>[cache]
max_bytes = "4GiB"
eviction = "lru"</code></pre>
<p>When <code>eviction</code> is <code>lfu</code>, objects read fewer than three times in an hour
are evicted first.</p>
<div class="admonition warning"><p>Changing the eviction policy drops the whole cache on restart.</p></div>
<div class="md-source-file">Last update: 2026-10-01 · <a href="/edit">Edit this page</a></div>
<nav class="md-footer"><a href="/prev">Previous: Deploy</a><a href="/next">Next: Scale</a></nav>
</div>
<div class="md-sidebar md-sidebar--secondary"><div>On this page</div><ul>{ON_THIS_PAGE}</ul></div></div>
<div class="md-footer-meta">Made with a static site generator. Was this page helpful? Yes No</div>
</body></html>"""
    return Page("docs-nav-heavy", "nav-heavy docs", html, body=[
        "write-through cache whose size is set with",
        'max_bytes = "4GiB"',
        "read fewer than three times in an hour",
        "Changing the eviction policy drops the whole cache",
    ], boilerplate=[
        "Chapter 7: Restore", "Chapter 15: Plugins", "Previous: Deploy", "Edit this page",
        "Was this page helpful", "Docs / Operations",
    ])


def docs_reference() -> Page:
    html = f"""<html><head><title>Array.prototype.flatMap() - Web reference</title></head><body>
<header class="top-navigation"><nav><ul>{_links("ref", ["References", "Guides", "Plus",
"Curriculum", "Blog", "Play", "AI Help"])}</ul></nav></header>
<div class="main-wrapper"><nav class="sidebar"><ol>{_links("m", [f"Array.prototype.{m}()" for m in
["at", "concat", "copyWithin", "entries", "every", "fill", "filter", "find", "findIndex", "flat",
 "forEach", "includes", "indexOf", "join", "keys", "map", "pop", "push", "reduce", "reverse"]])}</ol></nav>
<main id="content"><article class="main-page-content">
<h1>Array.prototype.flatMap()</h1>
<p>The flatMap() method returns a new array formed by applying a given callback function to each
element of the array, and then flattening the result by one level.</p>
<h2>Syntax</h2><pre>flatMap(callbackFn)
flatMap(callbackFn, thisArg)</pre>
<h2>Description</h2>
<p>It is identical to a map() followed by a flat() of depth 1, but slightly more efficient than
calling those two methods separately.</p>
<table><tr><th>Browser</th><th>Since</th></tr><tr><td>Chrome</td><td>69</td></tr></table>
<aside class="metadata"><p>This page was last modified by contributors.</p></aside>
</article></main></div>
<footer class="page-footer"><p>Your blueprint for a better internet.</p></footer></body></html>"""
    return Page("docs-reference", "nav-heavy docs", html, body=[
        "applying a given callback function to each element",
        "flatMap(callbackFn, thisArg)",
        "slightly more efficient than calling those two methods separately",
        "Chrome",
    ], boilerplate=[
        "Array.prototype.copyWithin()", "Array.prototype.reduce()", "Curriculum",
        "last modified by contributors", "Your blueprint for a better internet",
    ])


def _post(author: str, when: str, text: str, signature: str) -> str:
    return f"""<div class="post bg2"><div class="postprofile"><a class="username">{author}</a>
<span>Posts: 1,204</span><span>Joined: Mar 2019</span></div><div class="postbody">
<p class="author">{when}</p><div class="content">{text}</div>
<div class="signature">{signature}</div></div></div>"""


def forum_thread() -> Page:
    posts = "".join([
        _post("ferrous", "Mon Nov 02, 2026 8:14 pm", "My 1998 hatchback idles rough only when cold; the"
              " idle settles after about four minutes once the engine is warm.", "Never trust a gasket."),
        _post("wrenchgirl", "Mon Nov 02, 2026 9:02 pm", "Sounds like the coolant temperature sensor is"
              " reporting warm too early, so the mixture is too lean at cold start.", "Tools before rules."),
        _post("ferrous", "Tue Nov 03, 2026 7:40 am", "Replaced the sensor for twelve euros and the cold"
              " idle is smooth now. Thanks!", "Never trust a gasket."),
    ])
    html = f"""<html><head><title>Rough idle when cold - Garage Talk forum</title></head><body>
<div class="headerbar"><a href="/">Garage Talk</a><ul class="navbar">{_links("f", ["Board index",
"Engines", "Electrics", "FAQ", "Register", "Login"])}</ul></div>
<div class="breadcrumbs">Board index » Engines » Petrol engines</div>
<h2 class="topic-title">Rough idle when cold</h2>
<div class="action-bar">Post Reply · Search this topic · 3 posts · Page 1 of 1</div>
{posts}
<div class="action-bar">Return to “Petrol engines” · Jump to</div>
<div class="stat-block"><h3>Who is online</h3><p>Users browsing this forum: Bing [Bot] and 4 guests</p></div>
<div class="copyright">Powered by forum software © Forum Ltd</div></body></html>"""
    return Page("forum-thread", "forum thread", html, body=[
        "idles rough only when cold",
        "coolant temperature sensor is reporting warm too early",
        "Replaced the sensor for twelve euros",
        "Rough idle when cold", "wrenchgirl",
    ], boilerplate=[
        "Users browsing this forum", "Powered by forum software", "Search this topic",
        "Joined: Mar 2019", "Never trust a gasket", "Board index » Engines",
    ])


def qa_thread() -> Page:
    html = f"""<html><head><title>python - Why is my list comprehension slower? - Q&amp;A</title></head>
<body><header class="top-bar"><a href="/">Q&amp;A</a><nav>{_links("q", ["Questions", "Tags",
"Users", "Companies", "Jobs"], "span")}</nav></header>
<div id="content"><div id="question-header"><h1>Why is my list comprehension slower than a loop?</h1></div>
<div class="question"><div class="s-prose js-post-body"><p>Timing both versions with timeit, the
comprehension that calls <code>str.upper</code> takes 1.4 ms while the explicit loop takes
1.1 ms.</p></div>
<div class="comments"><span class="comment-copy">Can you show the exact timeit call?</span></div></div>
<h2>2 Answers</h2>
<div class="answer accepted-answer"><div class="s-prose js-post-body"><p>The comprehension looks up
<code>str.upper</code> on every iteration; bind it to a local name first and the difference
disappears.</p></div>
<div class="comments"><span class="comment-copy">This fixed it, thanks.</span></div></div>
<div class="answer"><div class="s-prose js-post-body"><p>Also measure with a larger input: at this
size you are mostly timing the interpreter's setup.</p></div></div>
<div id="sidebar"><div class="module"><h4>Hot Network Questions</h4><ul>{_links("hot", [
"How do magnets know which way is north", "Is it rude to reply all"])}</ul></div>
<div class="module"><h4>Linked</h4><ul>{_links("l", ["Python loop performance tips"])}</ul></div></div>
</div><footer><p>Site design / logo © 2026; user contributions licensed under CC BY-SA.</p></footer>
</body></html>"""
    return Page("qa-thread", "forum thread", html, body=[
        "comprehension that calls", "takes 1.4 ms while the explicit loop takes",
        "bind it to a local name first and the difference disappears",
        "at this size you are mostly timing the interpreter's setup",
    ], boilerplate=[
        "How do magnets know which way is north", "Python loop performance tips",
        "user contributions licensed under CC BY-SA", "Companies",
    ])


def product_page() -> Page:
    recs = "".join(f'<div class="product-card"><a href="/p/{n}">{name}</a><span>€{price}</span></div>'
                   for n, (name, price) in enumerate([("Trail runner GTX", 139), ("Merino hiking socks",
                                                                                     19)]))
    html = f"""<html><head><title>Summit 45 backpack | Outdoor Shop</title></head><body>
<div class="promo-strip">Free delivery on orders over €50 — Use code AUTUMN10</div>
<header><nav class="main-menu"><ul>{_links("c", ["Men", "Women", "Kids", "Camping", "Climbing",
"Sale"])}</ul></nav><div class="basket">Basket (0)</div></header>
<div class="breadcrumb">Home › Backpacks › Trekking</div>
<div class="product-detail"><h1 class="product-title">Summit 45 trekking backpack</h1>
<div class="price">€129.95</div>
<div class="product-description"><p>A 45 litre pack with an adjustable back system that fits
torso lengths from 40 to 52 cm.</p><p>The lid converts into a hip bag for summit days.</p></div>
<table class="specs"><tr><th>Weight</th><td>1.6 kg</td></tr><tr><th>Material</th>
<td>Recycled 210D nylon</td></tr></table>
<button>Add to basket</button></div>
<section class="reviews"><h2>Reviews (38)</h2><div class="review">Carried it across the GR20, the
hip belt never slipped. — Lena</div></section>
<section class="recommendations"><h2>Customers also bought</h2>{recs}</section>
<div class="newsletter-signup">Get 10% off your first order when you subscribe.</div>
{FOOTER}</body></html>"""
    return Page("product-page", "product page", html, body=[
        "Summit 45 trekking backpack", "€129.95",
        "adjustable back system that fits torso lengths from 40 to 52 cm",
        "lid converts into a hip bag", "Recycled 210D nylon",
    ], boilerplate=[
        "Free delivery on orders over", "Trail runner GTX", "Get 10% off your first order",
        "Home › Backpacks", "Basket (0)", "Climbing",
    ])


def product_div_soup() -> Page:
    html = """<html><head><title>Kettle K2 – Brewware</title>
<script type="application/ld+json">{"@type": "Product", "name": "Kettle K2"}</script></head><body>
<div class="shopify-section header"><a href="/">Brewware</a>
<div class="nav-links"><a href="/kettles">Kettles</a><a href="/grinders">Grinders</a>
<a href="/account">Account</a><a href="/cart">Cart</a></div></div>
<div class="shopify-section main-product"><div class="grid"><div class="grid__item">
<img src="/k2.jpg" alt="Kettle K2 in matte black"></div>
<div class="grid__item product__info-wrapper"><h1>Kettle K2</h1>
<div class="price__regular">$89.00</div>
<div class="product__description rte"><p>A gooseneck kettle that holds its set temperature to
within one degree for up to sixty minutes.</p><ul><li>0.9 litre capacity</li>
<li>Stainless steel body, 1200 W base</li></ul></div>
<div class="product-form"><span>Quantity</span><span>Add to cart</span></div>
<div class="product__accordion">Shipping &amp; returns: free returns within 30 days.</div>
</div></div></div>
<div class="shopify-section related-products"><h2>You may also like</h2>
<a href="/p/1">Burr Grinder G1</a><a href="/p/2">Pour-over stand</a></div>
<div class="shopify-section footer"><p>© 2026 Brewware. Powered by an online shop platform.</p>
<p>Join our mailing list for brewing guides.</p></div></body></html>"""
    return Page("product-div-soup", "product page", html, body=[
        "Kettle K2", "$89.00", "holds its set temperature to within one degree",
        "0.9 litre capacity", "Stainless steel body, 1200 W base",
    ], boilerplate=[
        "Burr Grinder G1", "Pour-over stand", "Join our mailing list", "Powered by an online shop",
        "Grinders",
    ])


def all_pages() -> list[Page]:
    return [news_article(), blog_div_soup(), docs_nav_heavy(), docs_reference(), forum_thread(),
            qa_thread(), product_page(), product_div_soup()]
