// MathJax 2 (served from the site itself, mathjax/): typeset \(...\) and \[...\] as
// pymdownx.arithmatex writes them (generic mode: <span class="arithmatex">).
window.MathJax = {
  tex2jax: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]],
            processEscapes: true, processEnvironments: true},
  messageStyle: "none",
  showMathMenu: false,
  "HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null},
  SVG: {font: "STIX-Web"}
};
