// Draws Adaptive Cards as Webex does, with Microsoft's renderer (npm `adaptivecards`) and `markdown-it`.
// Needs /vendor/adaptivecards/adaptivecards.min.js and /vendor/markdown-it/markdown-it.umd.min.js loaded first.
//
//   const result = await RolloverCards.render(cardJson, hostElement, {onSubmit, onOpenUrl});
//   result -> {errors: [...], warnings: [...], visibleChars, height}
//
// onSubmit({actionId, title, inputs}) gets what Webex posts to /attachment/actions: the card's inputs merged
// with the action's `data`, as strings. Action.ShowCard opens inline; Action.OpenUrl opens a new tab.
(function () {
  "use strict";
  const AC = window.AdaptiveCards;
  // Webex takes cards up to schema 1.3: newer elements and properties count as unknown, as they would there.
  const WEBEX_VERSION = AC.Versions.v1_3;
  // Renderer events that only advise; every other event means Webex would not draw what the JSON says.
  const ADVICE = new Set([AC.ValidationEvent.Hint, AC.ValidationEvent.Deprecated,
    AC.ValidationEvent.RequiredInputsShouldHaveLabel, AC.ValidationEvent.RequiredInputsShouldHaveErrorMessage]);

  // Markdown in TextBlocks: raw HTML stays text (a card must not inject markup), bare URLs become links.
  const markdown = window.markdownit({html: false, linkify: true, breaks: false});
  AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
    result.outputHtml = markdown.render(text);
    result.didProcess = true;
  };

  const hostConfigUrl = new URL("hostconfig.json", document.currentScript.src);
  const hostConfig = fetch(hostConfigUrl).then((response) => {
    if (!response.ok) throw new Error(`${hostConfigUrl}: HTTP ${response.status}`);
    return response.json();
  }).then((json) => new AC.HostConfig(json));

  function describe(event) {
    return `${AC.ValidationEvent[event.event]}: ${event.message}`;
  }

  function sortEvents(events, result) {
    for (const event of events) {
      (ADVICE.has(event.event) ? result.warnings : result.errors).push(describe(event));
    }
  }

  function parse(json, result) {
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      result.errors.push("MissingCardType: the card is not a JSON object");
      return undefined;
    }
    const card = new AC.AdaptiveCard();
    card.maxVersion = WEBEX_VERSION;
    const context = new AC.SerializationContext(WEBEX_VERSION);
    card.parse(json, context);
    const parseEvents = [];
    for (let i = 0; i < context.eventCount; i++) parseEvents.push(context.getEventAt(i));
    sortEvents(parseEvents, result);
    sortEvents(card.validateProperties().validationEvents, result);
    return card;
  }

  function wireActions(card, hooks) {
    card.onExecuteAction = (action) => {
      if (action instanceof AC.SubmitAction) {
        hooks.onSubmit({actionId: action.id || null, title: action.title || "", inputs: action.data});
      } else if (action instanceof AC.OpenUrlAction) {
        hooks.onOpenUrl(action.url);
      }
    };
  }

  // What a reader sees at first: text laid out and shown (collapsed ShowCards and hidden elements excluded),
  // whitespace runs counted as one character.
  function visibleChars(element) {
    return element.innerText.replace(/\s+/g, " ").trim().length;
  }

  async function render(json, host, hooks = {}) {
    const result = {errors: [], warnings: [], visibleChars: 0, height: 0};
    host.replaceChildren();
    const card = parse(json, result);
    if (!card) return result;
    card.hostConfig = await hostConfig;
    wireActions(card, {
      onSubmit: hooks.onSubmit || (() => {}),
      onOpenUrl: hooks.onOpenUrl || ((url) => window.open(url, "_blank", "noopener")),
    });
    let element;
    try {
      element = card.render();
    } catch (error) {
      result.errors.push(`RenderFailed: ${error}`);
      return result;
    }
    if (!element) {
      result.errors.push("RenderFailed: the renderer drew nothing");
      return result;
    }
    host.appendChild(element);
    result.visibleChars = visibleChars(host);
    result.height = Math.ceil(host.getBoundingClientRect().height);  // the PNG's height
    return result;
  }

  window.RolloverCards = {render, visibleChars, hostConfig};
})();
