"""Page assets of stgraph's browser views: the HTML report template (``report.html``,
``report.css``, ``report.js``, inlined into one file by :mod:`stgraph.html_report`) and the live
dashboard's pages (:mod:`stgraph.serve`). Plain SVG and vanilla JavaScript, nothing fetched from
a network."""
