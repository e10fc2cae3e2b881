"""axe-core (vendored here, with its licence) in a Playwright page: the WCAG 2.1 AA violations it finds."""

from pathlib import Path

AXE = Path(__file__).with_name("axe.min.js")
WCAG21AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def install(context) -> None:
    """Load axe into every page of the context before the page's own scripts (an init script is not subject to
    the page's Content-Security-Policy, which refuses inline scripts)."""
    context.add_init_script(path=str(AXE))


def violations(page) -> list[str]:
    """One line per violated rule and node: 'rule-id: target (help)'."""
    found = page.evaluate("""async (tags) => {
        const r = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
        return r.violations.flatMap(v => v.nodes.map(n => `${v.id}: ${n.target.join(" ")} (${v.help})`));
    }""", WCAG21AA)
    return list(found)
