/**
 * TypeScript declarations of the Kairos browser tracker (tracker.js), served
 * beside it at /tracker.d.ts. The tracker defines one global, `kairos`:
 *
 *   <script src="https://kairos.example/tracker.js" data-key="pk_..." async></script>
 *
 *   kairos.track('add_to_cart', { item: 'sku-42', value: 1 });
 *   kairos.identify('u-42', userHashFromYourBackEnd);
 *   kairos.on('promotion', (p, el) => console.log(p.offer.title, el));
 *
 * Before the script has loaded, `window.kairos` may be an array of calls,
 * `[name, ...args]`, which the tracker replays once it loads (the queue
 * form: `(window.kairos = window.kairos || []).push(['identify', 'u-42'])`).
 * Every method is safe: it never throws into the page, and a method that
 * returns an event id returns '' when nothing is recorded (no key,
 * Do-Not-Track, Global Privacy Control, or consent refused).
 */

declare namespace Kairos {
  /** Event types the engine weighs; any other string is sent as is. */
  type EventType =
    | 'view'
    | 'click'
    | 'like'
    | 'dwell'
    | 'scroll'
    | 'add_to_cart'
    | 'conversion'
    | 'impression'
    | 'identify'
    | (string & {});

  /** A prop value: objects are sent as JSON, everything as text (at most 1,000 characters). */
  type PropValue = string | number | boolean | object | null | undefined;

  /**
   * The data of an event: these members become the event's fields; any
   * other member, and the members of props, become props.
   */
  interface EventData {
    /** The item the event is about (data-kairos-item). */
    item?: string;
    /** The offer the event is about (data-kairos-offer). */
    offer?: string;
    /** The offer's token from GET /v1/offers (data-kairos-token): attributes the event to the exposure. */
    token?: string;
    /** Dwell ms, scroll %, revenue (never negative). */
    value?: number;
    /** Dwell only: how it was measured (the tracker's own dwell events set it). */
    source?: 'mouse' | 'viewport' | 'touch';
    /** The element, e.g. "item:sku-42". */
    element?: string;
    /** The signed-in user (default: the one identify named). */
    user?: string;
    /** The referrer (page views). */
    referrer?: string;
    /** Free-form props (at most 32 with the tracker's own). */
    props?: Record<string, PropValue>;
    [prop: string]: PropValue | Record<string, PropValue>;
  }

  /** An offer as a promotion shows it. */
  interface PromotionOffer {
    id: string;
    title?: string;
    body?: string;
    image?: string;
    link?: string;
    item?: string;
  }

  /** An instant promotion pushed over GET /v1/promotions/stream. */
  interface Promotion {
    /** The promotion's id: its seq as text. */
    id: string;
    seq: number;
    visitor: string;
    offer: PromotionOffer;
    slot: string;
    token: string;
    rule?: string;
    /** RFC 3339 times. */
    created: string;
    expires: string;
  }

  /** Listener of rendered promotions: the promotion and the element shown. */
  type PromotionListener = (promotion: Promotion, element: HTMLElement) => void;

  /** A call of the queue form: a method name and its arguments. */
  type Call =
    | ['track', EventType, EventData?]
    | ['page', EventData?]
    | ['identify', string | null, string?]
    | ['consent', boolean]
    | ['on' | 'off', 'promotion', PromotionListener]
    | ['flush'];

  /** The tracker's API: window.kairos once tracker.js has loaded. */
  interface Tracker {
    /** The tracker's version ("1"). */
    readonly version: string;
    /** Records an event; returns its id ('' when nothing is recorded). */
    track(type: EventType, data?: EventData): string;
    /** Records a page view (single-page apps, after a route change); scroll depth starts again. Returns the event id. */
    page(data?: EventData): string;
    /**
     * Tells who the visitor is (login, sign-up): later events carry the
     * user and userHash, the hex HMAC-SHA256 of the user id under the
     * identity secret, computed by the site's back end. identify(null)
     * forgets both (logout). Returns the identify event's id.
     */
    identify(userId: string | null, userHash?: string): string;
    /** consent(false) stops all sending and forgets the ids; consent(true) (re)starts tracking. Remembered. */
    consent(granted: boolean): void;
    /** Calls fn after each rendered promotion (also dispatched as the DOM event "kairos:promotion"). */
    on(name: 'promotion', fn: PromotionListener): void;
    /** Removes a listener added with on. */
    off(name: 'promotion', fn: PromotionListener): void;
    /** Sends what is queued now. */
    flush(): void;
    /** The anonymous visitor id, or null when not tracking. */
    visitor(): string | null;
    /** The session id, or null when not tracking. */
    session(): string | null;
    /** Calls a method from its queue form, e.g. push(['track', 'like', { item: 'sku-1' }]). */
    push(call: Call): unknown;
  }
}

/**
 * The Kairos tracker (defined by tracker.js). Before it loads, a page may
 * set window.kairos to a Kairos.Call[] queue instead.
 */
declare var kairos: Kairos.Tracker;

interface DocumentEventMap {
  'kairos:promotion': CustomEvent<{ promotion: Kairos.Promotion; element: HTMLElement }>;
}
