// History's "Copy link": a fresh CloudFront signed link from the profile's reelup-server
// (which holds the key), so a copied link always works and says when it stops working; the
// stored streaming URL where the endpoint cannot sign (plain Companion, no CloudFront key).
import { formatDate } from "./format";
import { asIpcError, type Commands, type UploadItem } from "./ipc";

export type LinkCommands = Pick<Commands, "signLink" | "copyText">;

export interface CopiedLink {
  url: string;
  /** Unix seconds when the link stops working; null for a plain link. */
  expiresAt: number | null;
  /** The poster's link, signed alike; null without a poster. */
  posterUrl: string | null;
}

/** `item`'s links: signed anew when its endpoint signs links, else as stored. */
export async function freshLink(item: UploadItem, commands: Pick<Commands, "signLink">): Promise<CopiedLink> {
  try {
    const signed = await commands.signLink(item.id);
    return { url: signed.url, expiresAt: signed.expiresAt, posterUrl: signed.posterUrl };
  } catch (e) {
    if (asIpcError(e).code !== "links_unavailable") throw e;
    return { url: item.url ?? "", expiresAt: null, posterUrl: item.posterUrl };
  }
}

/** Copies `item`'s link (see `freshLink`). */
export async function copyLink(item: UploadItem, commands: LinkCommands): Promise<CopiedLink> {
  const link = await freshLink(item, commands);
  await commands.copyText(link.url);
  return link;
}

/**
 * What the creator is told after copying (`what`: the link itself, or the embed code that
 * carries it): when a signed link stops working. The two say different things, so one
 * after the other are two notices, not one counted twice.
 */
export function copiedMessage(link: CopiedLink, what: "link" | "embed" = "link"): string | null {
  if (link.expiresAt === null) return null;
  const until = formatDate(link.expiresAt);
  return what === "link" ? `Link copied. It works until ${until}.` : `Embed code copied. Its link works until ${until}.`;
}
