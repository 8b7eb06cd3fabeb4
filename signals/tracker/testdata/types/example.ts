// A single-page app using the tracker through tracker.d.ts; the test
// TestTypes compiles it with tsc --noEmit (strict), and bad.ts must not
// compile.
/// <reference path="../../tracker.d.ts" />

const id: string = kairos.track('add_to_cart', { item: 'sku-42', value: 1, props: { color: 'red', size: 42 } });
kairos.track('signup');
kairos.page({ item: 'sku-7' });
kairos.identify('u-42', 'a1b2c3');
kairos.identify(null); // logout
kairos.consent(false);
kairos.flush();
const visitor: string | null = kairos.visitor();
const session: string | null = kairos.session();
const version: string = kairos.version;

const onPromotion: Kairos.PromotionListener = (p, el) => {
  const title: string | undefined = p.offer.title;
  el.dataset.kairosToken = p.token;
  console.log(title, p.seq, p.slot, new Date(p.expires));
};
kairos.on('promotion', onPromotion);
kairos.off('promotion', onPromotion);
document.addEventListener('kairos:promotion', (e) => console.log(e.detail.promotion.offer.id, e.detail.element));

// The queue form, before the script has loaded.
const queue: Kairos.Call[] = [['identify', 'u-42'], ['track', 'like', { item: 'sku-1' }], ['consent', true]];
queue.forEach((c) => kairos.push(c));

export { id, visitor, session, version };
